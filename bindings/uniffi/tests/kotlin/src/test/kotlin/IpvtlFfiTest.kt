// The uniffi-generated Kotlin bindings against the simulator: the blocking
// API, `suspend` calls through runBlocking, errors, a Kotlin observer, and
// the wire names and values the records carry (SPEC §12).

import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import uniffi.ipvtl_ffi.ActionKind
import uniffi.ipvtl_ffi.BatchFilter
import uniffi.ipvtl_ffi.BatchSpec
import uniffi.ipvtl_ffi.BatchTarget
import uniffi.ipvtl_ffi.Cluster
import uniffi.ipvtl_ffi.ClusterEvent
import uniffi.ipvtl_ffi.ClusterObserver
import uniffi.ipvtl_ffi.ClusterSettings
import uniffi.ipvtl_ffi.HealingPolicy
import uniffi.ipvtl_ffi.IpvtlException
import uniffi.ipvtl_ffi.ReconcilerSettings
import uniffi.ipvtl_ffi.SimFleet
import uniffi.ipvtl_ffi.SettingScope
import uniffi.ipvtl_ffi.SilenceSpec
import uniffi.ipvtl_ffi.SimOptions

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class IpvtlFfiTest {
    private val sim = SimFleet.withOptions(4u, SimOptions(stoppingTimeMs = 300uL, startDelayMs = 100uL, seed = 7uL))

    // Only what the tests need; the fields left out take the client's defaults.
    private fun settings(): ClusterSettings =
        ClusterSettings(
            background = false,
            timeoutMs = 1_500uL,
            offlineAfter = 1u,
            stopTimeoutMs = 10_000uL,
            startTimeoutMs = 10_000uL,
            watchIntervalMs = 50uL,
        )

    private fun cluster() = Cluster(sim.servers(), settings())

    private fun runningChannel(id: String): UInt =
        (1u..sim.channels()).firstOrNull { sim.channelState(id, it) == "running" }
            ?: fail("no running channel on $id")

    @AfterAll
    fun stopSim() = sim.close()

    @Test
    fun `blocking poll sees every server online with its channels`() {
        cluster().use { c ->
            assertEquals(4u, c.len())
            assertTrue(c.snapshot().servers.all { it.state.health == "unknown" && it.state.channels.isEmpty() })
            val snap = c.pollBlocking()
            assertEquals(sim.ids(), snap.servers.map { it.config.id })
            assertEquals(4u, snap.counts.online)
            assertEquals(0u, snap.counts.unknown + snap.counts.offline + snap.counts.error)
            for (s in snap.servers) {
                assertEquals("online", s.state.health, s.toString())
                assertNull(s.state.error)
                assertNull(s.state.errorKind)
                assertEquals((1u..sim.channels()).toList(), s.state.channels.map { it.id })
                assertTrue(s.state.channels.all { it.stall == null }, s.toString())
                assertTrue(s.state.channels.filter { it.state == "running" }.all { (it.fps ?: 0.0) > 0.0 })
            }
        }
    }

    @Test
    fun `times are Unix seconds and settings left out are the client's defaults`() {
        cluster().use { c ->
            val snap = c.pollBlocking()
            val now = System.currentTimeMillis() / 1000.0
            assertTrue(Math.abs(snap.takenAt - now) < 5.0, "takenAt ${snap.takenAt} vs $now")
            val lastOk = snap.servers[0].state.lastOkAt ?: fail("no lastOkAt")
            assertTrue(Math.abs(lastOk - now) < 5.0, "lastOkAt $lastOk vs $now")
            assertTrue(Math.abs(c.now() - now) < 5.0)
            assertEquals(1_500uL, c.settings().timeoutMs)
        }
        val defaults = Cluster(sim.servers()).use { it.settings() }
        assertEquals(defaults, Cluster(sim.servers(), ClusterSettings()).use { it.settings() })
        val given = Cluster(sim.servers(), ClusterSettings(timeoutMs = 700uL)).use { it.settings() }
        assertEquals(700uL, given.timeoutMs)
        assertEquals(defaults.copy(timeoutMs = 700uL), given, "only what was given changes")
    }

    @Test
    fun `blocking restart stops, waits for idle, starts, and ends running`() {
        cluster().use { c ->
            c.pollBlocking()
            val id = sim.ids()[1]
            val ch = runningChannel(id)
            sim.resetRecords()
            val report = c.restartBlocking(id, ch)
            assertTrue(report.ok, report.summary)
            assertEquals("restart", report.action)
            assertEquals(ch, report.channelId)
            assertTrue(report.actionId != null && report.startedAt <= report.finishedAt, report.toString())
            assertEquals(listOf("stop", "wait_idle", "start", "wait_running"), report.phases.map { it.phase })
            assertTrue(report.phases.first { it.phase == "wait_idle" }.durationMs >= 250uL)
            assertEquals("running", report.finalState)
            assertEquals("running", sim.channelState(id, ch))
            assertEquals(listOf(ch to "stop", ch to "start"), sim.commands(id).map { it.channel to it.action })
        }
    }

    @Test
    fun `suspend restart through runBlocking, and a concurrent second one is Busy`() {
        cluster().use { c ->
            val id = sim.ids()[2]
            runBlocking {
                val snap = c.poll()
                assertTrue(snap.servers.all { it.state.health == "online" })
                val ch = runningChannel(id)
                val report = c.restart(id, ch)
                assertTrue(report.ok, report.summary)
                assertEquals("running", sim.channelState(id, ch))
                val after = c.refresh(id).state.channels[(ch - 1u).toInt()]
                assertEquals("running", after.state)

                sim.resetRecords()
                val first = async { runCatching { c.restart(id, ch) } }
                val second = async { runCatching { c.restart(id, ch) } }
                val results = listOf(first.await(), second.await())
                assertEquals(1, results.count { it.isSuccess }, results.toString())
                assertEquals(1, results.count { it.exceptionOrNull() is IpvtlException.Busy }, results.toString())
                assertEquals(listOf("stop", "start"), sim.commands(id).map { it.action })

                try {
                    c.restart("no-such-server", 1u)
                    fail("no error for an unknown server")
                } catch (e: IpvtlException.ServerNotFound) {
                    assertTrue(e.message!!.contains("no-such-server"))
                }
            }
        }
    }

    @Test
    fun `errors map to the flat IpvtlException`() {
        cluster().use { c ->
            c.pollBlocking()
            val id = sim.ids()[0]
            sim.resetRecords()
            assertThrows(IpvtlException.ServerNotFound::class.java) { c.server("no-such-server") }
            assertThrows(IpvtlException.ServerNotFound::class.java) { c.restartBlocking("no-such-server", 1u) }
            assertThrows(IpvtlException.ChannelNotFound::class.java) { c.restartBlocking(id, 0u) }
            assertThrows(IpvtlException.ChannelNotFound::class.java) { c.stopBlocking(id, 99u) }
            assertEquals(0uL, sim.totalRequests(id), "refusals send nothing")
            assertThrows(IpvtlException.Config::class.java) { Cluster(sim.servers().take(1) + sim.servers().take(1)) }
            assertThrows(IpvtlException.Settings::class.java) { Cluster(sim.servers(), settings().copy(concurrency = 0u)) }
            sim.setFault(id, "reject_commands")
            try {
                val e = assertThrows(IpvtlException.ActionFailed::class.java) { c.restartBlocking(id, 1u) }
                assertTrue(e.message!!.contains("stop"), e.message)
                // The report of a failed action names its cause: the server
                // answered (HTTP 500), it was not unreachable.
                val spec = BatchSpec(action = ActionKind.STOP, targets = listOf(BatchTarget(id, 1u)))
                val batch = c.batchBlocking(spec)
                assertFalse(batch.ok)
                assertEquals(1u, batch.failed)
                val failed = batch.reports.single()
                assertEquals("stop_failed", failed.errorKind)
                assertEquals("http", failed.causeKind, failed.toString())
            } finally {
                sim.setFault(id, null)
            }
        }
    }

    @Test
    fun `a Kotlin observer receives the restart's events until cancelled`() {
        cluster().use { c ->
            c.pollBlocking()
            val id = sim.ids()[3]
            val ch = runningChannel(id)
            val events = LinkedBlockingQueue<ClusterEvent>()
            val observer = object : ClusterObserver {
                override fun onEvent(event: ClusterEvent) {
                    events.add(event)
                }
            }
            c.watch(observer).use { handle ->
                assertTrue(handle.isActive())
                c.restartBlocking(id, ch)
                val seen = mutableListOf<ClusterEvent>()
                while (true) {
                    val e = events.poll(10, TimeUnit.SECONDS) ?: fail("no ActionFinished; saw $seen")
                    seen.add(e)
                    if (e is ClusterEvent.ActionFinished) break
                }
                val finished = seen.last() as ClusterEvent.ActionFinished
                assertTrue(finished.report.ok)
                val started = seen.filterIsInstance<ClusterEvent.ActionStarted>().single { it.serverId == id }
                assertEquals(ch, started.channelId)
                assertEquals("restart", started.action)
                assertEquals(finished.report.actionId, started.actionId)
                val changes = seen.filterIsInstance<ClusterEvent.ChannelStateChanged>().filter { it.channelId == ch }
                assertTrue(changes.any { it.to == "idle" }, changes.toString())
                assertEquals(0uL, handle.failures())
                handle.cancel()
                val deadline = System.nanoTime() + 10_000_000_000L
                while (handle.isActive()) {
                    if (System.nanoTime() > deadline) fail<Unit>("the watch did not end after cancel()")
                    Thread.sleep(10)
                }
                events.clear()
                c.pollBlocking()
                assertNull(events.poll(300, TimeUnit.MILLISECONDS), "no event after cancel")
            }
        }
    }

    @Test
    fun `batch restarts what the plan says`() {
        cluster().use { c ->
            c.pollBlocking()
            val ids = sim.ids().take(2)
            val spec = BatchSpec(
                action = ActionKind.RESTART,
                filter = BatchFilter(servers = ids, channels = listOf(2u)),
                maxParallel = 2u,
            )
            assertEquals(ids.map { it to 2u }, c.plan(spec).map { it.serverId to it.channelId })
            val report = runBlocking { c.batch(spec) }
            assertTrue(report.ok, report.toString())
            assertEquals(2u, report.succeeded, report.toString())
            assertEquals("restart", report.action)
            assertNull(report.stoppedEarly)
            assertTrue(ids.all { sim.channelState(it, 2u) == "running" })
        }
    }

    @Test
    fun `a misspelt state is refused by the core, naming the valid ones`() {
        cluster().use { c ->
            c.pollBlocking()
            sim.resetRecords()
            val spec = BatchSpec(action = ActionKind.STOP, filter = BatchFilter(states = listOf("runing")))
            val e = assertThrows(IpvtlException.Batch::class.java) { c.plan(spec) }
            assertTrue(e.message!!.contains("unknown channel state \"runing\"; valid states: idle, running, stopping"), e.message)
            assertThrows(IpvtlException.Batch::class.java) { c.batchBlocking(spec) }
            assertThrows(IpvtlException.Batch::class.java) { c.plan(BatchSpec(action = ActionKind.STOP)) }
            assertEquals(0uL, sim.ids().sumOf { sim.totalRequests(it) }, "a refused batch sends nothing")
        }
    }

    @Test
    fun `a stalled channel says zero_fps in its record and its event`() {
        SimFleet.withOptions(1u, SimOptions(initialRunning = 1.0)).use { stalledSim ->
            Cluster(stalledSim.servers(), settings()).use { c ->
                val id = stalledSim.ids().single()
                c.pollBlocking()
                val stream = c.subscribe()
                stalledSim.setFault(id, "stalled")
                val channels = c.refreshBlocking(id).state.channels
                assertEquals(List(channels.size) { "zero_fps" }, channels.map { it.stall }, channels.toString())
                assertTrue(channels.all { it.fps == 0.0 }, channels.toString())
                val stalled = mutableListOf<ClusterEvent.ChannelStalled>()
                while (stalled.size < channels.size) {
                    val e = stream.nextBlocking(5_000uL) ?: fail("only $stalled")
                    if (e is ClusterEvent.ChannelStalled) stalled.add(e)
                }
                assertEquals(channels.map { it.id }, stalled.map { it.channelId })
                assertTrue(stalled.all { it.serverId == id && it.reason == "zero_fps" }, stalled.toString())
                stream.unsubscribe()
                stream.close()
            }
        }
    }

    @Test
    fun `desired running and healing on start an idle channel once`() {
        SimFleet.withOptions(2u, SimOptions(channels = 2u, initialRunning = 0.0, seed = 3uL)).use { idleSim ->
            val live = ClusterSettings(background = true, intervalMs = 200uL, timeoutMs = 1_500uL, offlineAfter = 1u,
                watchIntervalMs = 50uL)
            Cluster(idleSim.servers(), live).use { c ->
                c.pollBlocking()
                val id = idleSim.ids().first()
                assertEquals("unmanaged", c.desired(id, 1u).desired)
                val e = assertThrows(IpvtlException.Invalid::class.java) { c.setDesired(SettingScope(serverId = id), "Running") }
                assertTrue(e.message!!.contains("unmanaged"), e.message)
                assertThrows(IpvtlException.ServerNotFound::class.java) { c.setDesired(SettingScope(serverId = "nope"), "idle") }
                assertThrows(IpvtlException.Invalid::class.java) { c.setHealing(SettingScope(tag = "eu"), HealingPolicy(limit = 0u)) }
                val stream = c.subscribe()
                c.setDesired(SettingScope(serverId = id, channelId = 1u), "running")
                c.setHealing(SettingScope(serverId = id), HealingPolicy(graceMs = 0uL))
                assertEquals(listOf("api"), c.desiredSettings().map { it.source })
                assertEquals(listOf("api"), c.healingSettings().map { it.source })
                assertEquals(null, c.desired(id, 1u).source)
                val seen = mutableListOf<ClusterEvent>()
                while (seen.none { it is ClusterEvent.DriftEnded }) {
                    seen.add(stream.nextBlocking(10_000uL) ?: fail("no drift_ended in $seen"))
                }
                val started = seen.filterIsInstance<ClusterEvent.HealStarted>().single()
                assertEquals(Triple(id, 1u, "start"), Triple(started.heal.serverId, started.heal.channelId, started.heal.action))
                assertEquals(1u, started.attempt)
                assertEquals("running", idleSim.channelState(id, 1u))
                assertTrue(c.drifts().isEmpty())
                val status = c.configureReconciler(ReconcilerSettings(paused = true))
                assertTrue(status.paused && !status.storm && status.managed == 1u, status.toString())
                assertEquals("running", c.clearDesired(SettingScope(serverId = id, channelId = 1u)))
                stream.unsubscribe()
                stream.close()
            }
        }
    }

    @Test
    fun `alerts fire after their for, a silence holds one, and both resolve`() {
        // server_down after 0.4 s; cpu_high off (the simulated servers run hot).
        val rules = "[rules.server_down]\nfor = \"400ms\"\n[rules.cpu_high]\nenabled = false\n"
        SimFleet.withOptions(2u, SimOptions(seed = 5uL)).use { alertSim ->
            Cluster(alertSim.servers(), settings()).use { c ->
                c.pollBlocking()
                val bad = assertThrows(IpvtlException.Invalid::class.java) { c.watchAlerts("[rules.nope]\nfor = 1\n") }
                assertTrue(bad.message!!.contains("line 1") && bad.message!!.contains("nope"), bad.message)
                c.watchAlerts(rules).use { watch ->
                    val (down, held) = alertSim.ids()
                    assertThrows(IpvtlException.Invalid::class.java) { watch.silence(SilenceSpec(matchers = listOf("server=x"))) }
                    val silence = watch.silence(SilenceSpec(matchers = listOf("server=$held"), durationMs = 60_000uL))
                    assertEquals(listOf(silence to "api"), watch.silences().map { it.id to it.origin })
                    val t0 = System.currentTimeMillis() / 1000.0
                    alertSim.setFault(down, "down")
                    alertSim.setFault(held, "down")
                    c.pollBlocking()
                    // The suspend form, through runBlocking.
                    val firing = runBlocking { watch.next() } ?: fail("no notification")
                    assertEquals("firing", firing.kind)
                    assertEquals("IpvtlServerDown", firing.labels["alertname"])
                    assertEquals(down, firing.labels["server"])
                    assertTrue(firing.startsAt >= t0 + 0.4 - 0.01, "${firing.startsAt} vs $t0")
                    assertNull(firing.endsAt)
                    val deadline = System.nanoTime() + 10_000_000_000L
                    while (watch.alerts().none { it.state == "silenced" }) {
                        assertTrue(System.nanoTime() < deadline, watch.alerts().toString())
                        Thread.sleep(20)
                    }
                    val heldAlert = watch.alerts().single { it.labels["server"] == held }
                    assertEquals("silence" to silence, heldAlert.silencedBy to heldAlert.silenceId)
                    assertNull(watch.tryNext(), "a silenced alert is not notified")
                    alertSim.setFault(down, null)
                    c.pollBlocking()
                    val resolved = watch.nextBlocking(10_000uL) ?: fail("no resolve")
                    assertEquals("resolved" to firing.fingerprint, resolved.kind to resolved.fingerprint)
                    assertEquals(1, watch.history().size)
                    assertTrue(watch.expireSilence(silence))
                    assertFalse(watch.expireSilence(silence))
                    val fired = watch.nextBlocking(10_000uL) ?: fail("the held alert did not fire")
                    assertEquals(held, fired.labels["server"])
                    watch.cancel()
                    assertNull(watch.nextBlocking(5_000uL))
                }
            }
        }
    }
}
