# The uniffi-generated Ruby bindings (Debian's ruby + ruby-ffi) against the
# simulator: the synchronous calls, errors, and (since uniffi 0.32's Ruby
# generator has them) one async method and an observer.
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
  def settings(**changes)
    d = IpvtlFfi.default_settings
    fields = %i[interval_ms timeout_ms concurrency priority_concurrency backoff_max_ms offline_after
                stop_timeout_ms start_timeout_ms watch_interval_ms body_limit background event_buffer]
    base = fields.to_h { |f| [f, d.public_send(f)] }
    base.merge!(background: false, timeout_ms: 1500, offline_after: 1, watch_interval_ms: 50)
    IpvtlFfi::ClusterSettings.new(**base.merge(changes))
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
    snap = c.poll_blocking
    assert_equal SIM.ids, snap.servers.map { |s| s.config.id }
    snap.servers.each do |s|
      assert_equal IpvtlFfi::Health::ONLINE, s.state.health
      assert_nil s.state.error
      assert_equal (1..SIM.channels).to_a, s.state.status.channels.map(&:id)
    end
  end

  def test_restart_blocking_ends_running_after_stop_then_start
    c = cluster
    c.poll_blocking
    id = SIM.ids[1]
    ch = running_channel(id)
    SIM.reset_records
    report = c.restart_blocking(id, ch)
    assert report.ok, report.summary
    assert_equal %w[stop wait_idle start wait_running], report.phases.map(&:phase)
    assert_equal 'running', report.final_state
    assert_equal 'running', SIM.channel_state(id, ch)
    assert_equal [[ch, 'stop'], [ch, 'start']], SIM.commands(id).map { |cmd| [cmd.channel, cmd.action] }
    assert_equal 'running', c.refresh_blocking(id).state.status.channels[ch - 1].state
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
    assert_raises(IpvtlFfi::IpvtlError::Settings) { IpvtlFfi::Cluster.new(SIM.servers, settings(concurrency: 0)) }
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
    assert_equal IpvtlFfi::Health::ONLINE, health&.to, seen.inspect
    handle.cancel
    Timeout.timeout(10) { sleep 0.01 while handle.is_active }
    refute handle.is_active
  end
end
