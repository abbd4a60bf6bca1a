// The uniffi-generated Kotlin bindings against the simulator: the blocking
// API, `suspend` calls through runBlocking, errors, and a Kotlin observer.

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
import uniffi.ipvtl_ffi.BatchTargets
import uniffi.ipvtl_ffi.Cluster
import uniffi.ipvtl_ffi.ClusterEvent
import uniffi.ipvtl_ffi.ClusterObserver
import uniffi.ipvtl_ffi.ClusterSettings
import uniffi.ipvtl_ffi.Health
import uniffi.ipvtl_ffi.IpvtlException
import uniffi.ipvtl_ffi.SimFleet
import uniffi.ipvtl_ffi.SimOptions
import uniffi.ipvtl_ffi.defaultSettings

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class IpvtlFfiTest {
    private val sim = SimFleet.withOptions(4u, SimOptions(stoppingTimeMs = 300uL, startDelayMs = 100uL, seed = 7uL))

    private fun settings(): ClusterSettings =
        defaultSettings().copy(
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
            assertTrue(c.snapshot().servers.all { it.state.health == Health.UNKNOWN })
            val snap = c.pollBlocking()
            assertEquals(sim.ids(), snap.servers.map { it.config.id })
            for (s in snap.servers) {
                assertEquals(Health.ONLINE, s.state.health, s.toString())
                assertNull(s.state.error)
                val status = s.state.status ?: fail("no status for ${s.config.id}")
                assertEquals((1u..sim.channels()).toList(), status.channels.map { it.id })
            }
        }
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
            assertEquals(ActionKind.RESTART, report.kind)
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
                assertTrue(snap.servers.all { it.state.health == Health.ONLINE })
                val ch = runningChannel(id)
                val report = c.restart(id, ch)
                assertTrue(report.ok, report.summary)
                assertEquals("running", sim.channelState(id, ch))
                val after = c.refresh(id).state.status!!.channels[(ch - 1u).toInt()]
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
                val spec = BatchSpec(kind = ActionKind.STOP, targets = BatchTargets.Channels(listOf(BatchTarget(id, 1u))))
                val failed = c.batchBlocking(spec).reports.single()
                assertEquals("stop_failed", failed.errorKind)
                assertEquals("http", failed.cause?.kind, failed.toString())
                assertEquals(false, failed.cause?.unreachable)
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
                assertTrue(seen.any { it is ClusterEvent.ActionStarted && it.serverId == id && it.channel == ch })
                val changes = seen.filterIsInstance<ClusterEvent.ChannelStateChanged>().filter { it.channel == ch }
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
                kind = ActionKind.RESTART,
                targets = BatchTargets.Filter(BatchFilter(servers = ids, channels = listOf(2u))),
                maxParallel = 2u,
            )
            assertEquals(ids.map { it to 2u }, c.plan(spec).map { it.serverId to it.channel })
            val report = runBlocking { c.batch(spec) }
            assertEquals(2u, report.ok, report.toString())
            assertTrue(ids.all { sim.channelState(it, 2u) == "running" })
        }
    }
}
