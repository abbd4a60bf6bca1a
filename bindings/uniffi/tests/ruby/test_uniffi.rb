# The uniffi-generated Ruby bindings (Debian's ruby + ruby-ffi) against the
# simulator: the synchronous calls, errors, the wire names and values of the
# records, and (since uniffi 0.32's Ruby generator has them) one async method
# and an observer.
#
# Usage: IPVTL_FFI_RUBY_DIR=DIR LD_LIBRARY_PATH=DIR ruby test_uniffi.rb
# (DIR holds ipvtl_ffi.rb; libipvtl_ffi.so must be on LD_LIBRARY_PATH.)

require 'io/wait' # the generated async calls wait on a pipe with wait_readable
require 'minitest/autorun'
require 'timeout'
require File.expand_path('ipvtl_ffi', ENV.fetch('IPVTL_FFI_RUBY_DIR'))

SIM = IpvtlFfi::SimFleet.with_options(
  3, IpvtlFfi::SimOptions.new(stopping_time_ms: 300, start_delay_ms: 100, seed: 7)
)
Minitest.after_run { SIM.shutdown }

class UniffiRubyTest < Minitest::Test
  # Only what the tests need; the fields left out take the client's defaults.
  def settings(**changes)
    IpvtlFfi::ClusterSettings.new(background: false, timeout_ms: 1500, offline_after: 1, watch_interval_ms: 50,
                                  **changes)
  end

  def cluster
    IpvtlFfi::Cluster.new(SIM.servers, settings)
  end

  def running_channel(id)
    (1..SIM.channels).find { |ch| SIM.channel_state(id, ch) == 'running' } || flunk("no running channel on #{id}")
  end

  def test_poll_blocking_sees_every_server_online
    c = cluster
    assert_equal 3, c.len
    assert(c.snapshot.servers.all? { |s| s.state.health == 'unknown' })
    snap = c.poll_blocking
    assert_equal SIM.ids, snap.servers.map { |s| s.config.id }
    assert_equal 3, snap.counts.online
    assert_in_delta Time.now.to_f, snap.taken_at, 5.0
    snap.servers.each do |s|
      assert_equal 'online', s.state.health
      assert_nil s.state.error
      assert_nil s.state.error_kind
      assert_equal (1..SIM.channels).to_a, s.state.channels.map(&:id)
      assert(s.state.channels.all? { |ch| ch.stall.nil? })
    end
  end

  def test_settings_left_out_are_the_defaults
    defaults = IpvtlFfi::Cluster.new(SIM.servers).settings
    assert_equal defaults.interval_ms, IpvtlFfi::Cluster.new(SIM.servers, IpvtlFfi::ClusterSettings.new).settings.interval_ms
    refute_nil defaults.interval_ms
    given = IpvtlFfi::Cluster.new(SIM.servers, settings(timeout_ms: 700)).settings
    assert_equal [700, defaults.interval_ms], [given.timeout_ms, given.interval_ms]
  end

  def test_a_misspelt_state_is_refused_naming_the_valid_ones
    c = cluster
    spec = IpvtlFfi::BatchSpec.new(action: IpvtlFfi::ActionKind::STOP,
                                   filter: IpvtlFfi::BatchFilter.new(states: ['runing']))
    e = assert_raises(IpvtlFfi::IpvtlError::Batch) { c.plan(spec) }
    assert_includes e.message, 'unknown channel state "runing"; valid states: idle, running, stopping'
  end

  def test_restart_blocking_ends_running_after_stop_then_start
    c = cluster
    c.poll_blocking
    id = SIM.ids[1]
    ch = running_channel(id)
    SIM.reset_records
    report = c.restart_blocking(id, ch)
    assert report.ok, report.summary
    assert_equal ['restart', id, ch], [report.action, report.server_id, report.channel_id]
    assert_equal %w[stop wait_idle start wait_running], report.phases.map(&:phase)
    assert_equal 'running', report.final_state
    assert_equal 'running', SIM.channel_state(id, ch)
    assert_equal [[ch, 'stop'], [ch, 'start']], SIM.commands(id).map { |cmd| [cmd.channel, cmd.action] }
    assert_equal 'running', c.refresh_blocking(id).state.channels[ch - 1].state
  end

  def test_errors_map_to_ipvtl_error_classes
    c = cluster
    c.poll_blocking
    id = SIM.ids[0]
    SIM.reset_records
    assert_raises(IpvtlFfi::IpvtlError::ServerNotFound) { c.server('no-such-server') }
    e = assert_raises(IpvtlFfi::IpvtlError::ServerNotFound) { c.restart_blocking('no-such-server', 1) }
    assert_match(/no-such-server/, e.message)
    assert_raises(IpvtlFfi::IpvtlError::ChannelNotFound) { c.restart_blocking(id, 0) }
    assert_raises(IpvtlFfi::IpvtlError::ChannelNotFound) { c.stop_blocking(id, 99) }
    assert_equal 0, SIM.total_requests(id), 'refusals send nothing'
    assert_raises(IpvtlFfi::IpvtlError::Config) { IpvtlFfi::Cluster.new(SIM.servers.take(1) * 2) }
    assert_raises(IpvtlFfi::IpvtlError::Settings) do
      IpvtlFfi::Cluster.new(SIM.servers, IpvtlFfi::ClusterSettings.new(concurrency: 0))
    end
    assert_raises(IpvtlFfi::IpvtlError::Simulator) { SIM.set_fault(id, 'on-fire') }
  end

  def test_async_restart_blocks_the_caller_until_done
    c = cluster
    c.poll_blocking
    id = SIM.ids[2]
    ch = running_channel(id)
    report = Timeout.timeout(30) { c.restart(id, ch) }
    assert report.ok, report.summary
    assert_equal 'running', SIM.channel_state(id, ch)
  end

  class Recorder
    attr_reader :events

    def initialize
      @events = Queue.new
    end

    def on_event(event)
      @events << event
    end
  end

  def test_a_ruby_observer_receives_events
    c = cluster
    rec = Recorder.new
    handle = c.watch(rec)
    assert handle.is_active
    c.refresh_blocking(SIM.ids[0])
    seen = []
    Timeout.timeout(10) do
      seen << rec.events.pop until seen.last.is_a?(IpvtlFfi::ClusterEvent::REFRESHED)
    end
    assert_equal SIM.ids[0], seen.last.server_id
    assert_nil seen.last.error
    health = seen.find { |e| e.is_a?(IpvtlFfi::ClusterEvent::HEALTH_CHANGED) }
    assert_equal %w[unknown online], [health&.from, health&.to], seen.inspect
    handle.cancel
    Timeout.timeout(10) { sleep 0.01 while handle.is_active }
    refute handle.is_active
  end

  def test_desired_state_and_healing_settings
    c = cluster
    id = SIM.ids.first
    assert_equal 'unmanaged', c.desired(id, 1).desired
    e = assert_raises(IpvtlFfi::IpvtlError::Invalid) { c.set_desired(IpvtlFfi::SettingScope.new(server_id: id), 'on') }
    assert_includes e.message, '"running", "idle" or "unmanaged"'
    assert_raises(IpvtlFfi::IpvtlError::ServerNotFound) do
      c.set_desired(IpvtlFfi::SettingScope.new(server_id: 'nope'), 'idle')
    end
    c.set_desired(IpvtlFfi::SettingScope.new(tag: 'eu'), 'idle')
    c.set_healing(IpvtlFfi::SettingScope.new(tag: 'eu'), IpvtlFfi::HealingPolicy.new(grace_ms: 2000, limit: 1))
    assert_equal [%w[idle api]], c.desired_settings.map { |s| [s.desired, s.source] }
    h = c.healing_settings.first
    assert_equal ['eu', 2000, 1, 'api'], [h.scope.tag, h.grace_ms, h.limit, h.source]
    status = c.configure_reconciler(IpvtlFfi::ReconcilerSettings.new(dry_run: true, storm_percent: 50))
    assert status.dry_run
    assert_equal 50, status.storm_percent
    assert_raises(IpvtlFfi::IpvtlError::Invalid) do
      c.configure_reconciler(IpvtlFfi::ReconcilerSettings.new(storm_percent: 101))
    end
    assert_equal [], c.drifts
    assert_equal false, c.clear_degraded(id, 1)
    assert_equal 'idle', c.clear_desired(IpvtlFfi::SettingScope.new(tag: 'eu'))
    assert_equal true, c.clear_healing(IpvtlFfi::SettingScope.new(tag: 'eu'))
  end

  # server_down after 0.4 s; cpu_high off (the simulated servers run hot).
  ALERT_RULES = "[rules.server_down]\nfor = \"400ms\"\n[rules.cpu_high]\nenabled = false\n"

  def test_alerts_fire_resolve_and_a_silence_holds_one
    sim = IpvtlFfi::SimFleet.with_options(2, IpvtlFfi::SimOptions.new(seed: 5))
    c = IpvtlFfi::Cluster.new(sim.servers, settings)
    c.poll_blocking
    e = assert_raises(IpvtlFfi::IpvtlError::Invalid) { c.watch_alerts("[rules.drift]\nfor = \"soon\"\n") }
    assert_includes e.message, 'line 2'
    watch = c.watch_alerts(ALERT_RULES)
    down, held = sim.ids
    assert_raises(IpvtlFfi::IpvtlError::Invalid) { watch.silence(IpvtlFfi::SilenceSpec.new(matchers: [])) }
    silence = watch.silence(IpvtlFfi::SilenceSpec.new(matchers: ["server=#{held}"], duration_ms: 60_000))
    assert_equal [[silence, 'api']], watch.silences.map { |s| [s.id, s.origin] }
    t0 = Time.now.to_f
    sim.set_fault(down, 'down')
    sim.set_fault(held, 'down')
    c.poll_blocking
    firing = watch.next_blocking(10_000)
    refute_nil firing
    assert_equal ['firing', 'IpvtlServerDown', down], [firing.kind, firing.labels['alertname'], firing.labels['server']]
    assert_operator firing.starts_at, :>=, t0 + 0.4 - 0.01
    Timeout.timeout(10) { sleep 0.02 until watch.alerts.any? { |a| a.state == 'silenced' } }
    held_alert = watch.alerts.find { |a| a.labels['server'] == held }
    assert_equal ['silence', silence], [held_alert.silenced_by, held_alert.silence_id]
    assert_nil watch.try_next, 'a silenced alert is not notified'
    sim.set_fault(down, nil)
    c.poll_blocking
    resolved = watch.next_blocking(10_000)
    assert_equal ['resolved', firing.fingerprint], [resolved&.kind, resolved&.fingerprint]
    assert_equal true, watch.expire_silence(silence)
    assert_equal held, watch.next_blocking(10_000)&.labels&.fetch('server')
    watch.cancel
    assert_nil watch.next_blocking(5_000)
  ensure
    sim&.shutdown
  end
end
