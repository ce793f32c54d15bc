// src/system/systemd.ts: the settings read from the environment as
// sd_notify(3) and sd_watchdog_enabled(3) read them, and the watchdog fed
// only while no request has been in flight longer than its interval.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { notifySettingsFrom, ServiceNotifier, type RequestProgress } from '../../src/system/systemd';

describe('notifySettingsFrom', () => {
  it('reads the socket and the watchdog, and takes them out of the environment', () => {
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42', KEEP: 'x' };
    expect(notifySettingsFrom(env, 42)).toEqual({ socket: '/run/systemd/notify', watchdogMs: 30_000 });
    expect(env).toEqual({ KEEP: 'x' });
  });

  it('takes an abstract socket name; a watchdog without WATCHDOG_PID is ours', () => {
    expect(notifySettingsFrom({ NOTIFY_SOCKET: '@sd-notify', WATCHDOG_USEC: '2000000' }, 7)).toEqual({ socket: '@sd-notify', watchdogMs: 2000 });
  });

  it("ignores a watchdog meant for another process, and what it cannot use", () => {
    expect(notifySettingsFrom({ NOTIFY_SOCKET: '/n', WATCHDOG_USEC: '2000000', WATCHDOG_PID: '8' }, 7)).toEqual({ socket: '/n', watchdogMs: null });
    expect(notifySettingsFrom({ NOTIFY_SOCKET: '/n', WATCHDOG_USEC: 'soon' }, 7)).toEqual({ socket: '/n', watchdogMs: null });
    expect(notifySettingsFrom({ NOTIFY_SOCKET: '/n', WATCHDOG_USEC: '0' }, 7)).toEqual({ socket: '/n', watchdogMs: null });
    expect(notifySettingsFrom({ NOTIFY_SOCKET: 'vsock:2:1', WATCHDOG_USEC: '2000000' }, 7)).toEqual({ socket: null, watchdogMs: null });
    expect(notifySettingsFrom({ WATCHDOG_USEC: '2000000' }, 7)).toEqual({ socket: null, watchdogMs: null });
  });
});

describe('ServiceNotifier', () => {
  let sent: string[];
  let progress: RequestProgress;
  const stalls: (number | null)[] = [];
  const notifier = (watchdogMs: number | null, socket: string | null = '/n', result = 0): ServiceNotifier =>
    new ServiceNotifier({
      settings: { socket, watchdogMs },
      send: (to, message) => {
        expect(to).toBe(socket);
        sent.push(message);
        return result;
      },
      progress: () => progress,
      onStall: (ms) => stalls.push(ms),
    });

  beforeEach(() => {
    vi.useFakeTimers();
    sent = [];
    stalls.length = 0;
    progress = { started: 0, finished: 0, oldestInFlightMs: 0 };
  });
  afterEach(() => vi.useRealTimers());

  it('says READY=1 and STOPPING=1 with a one-line status', () => {
    const n = notifier(null);
    n.ready('serving /a at\n/b');
    n.stopping('unmounting /b');
    expect(sent).toEqual(['READY=1\nSTATUS=serving /a at /b', 'STOPPING=1\nSTATUS=unmounting /b']);
  });

  it('sends nothing without a socket, and starts no watchdog', () => {
    const n = notifier(2000, null);
    expect(n.enabled).toBe(false);
    n.ready('x');
    n.startWatchdog();
    vi.advanceTimersByTime(10_000);
    expect(sent).toEqual([]);
  });

  it('pings every half interval while idle and while requests flow', () => {
    const n = notifier(2000);
    n.startWatchdog();
    expect(sent).toEqual(['WATCHDOG=1']);
    vi.advanceTimersByTime(3000);
    expect(sent).toHaveLength(4);
    progress = { started: 100, finished: 99, oldestInFlightMs: 5 };
    vi.advanceTimersByTime(2000);
    expect(sent).toHaveLength(6);
    n.stopWatchdog();
  });

  it('withholds pings while a request has been in flight longer than the interval, and resumes after', () => {
    const n = notifier(2000);
    n.startWatchdog();
    progress = { started: 10, finished: 9, oldestInFlightMs: 2001 };
    vi.advanceTimersByTime(5000);
    expect(sent).toEqual(['WATCHDOG=1']);
    expect(stalls).toEqual([2001]);
    progress = { started: 10, finished: 10, oldestInFlightMs: 0 };
    vi.advanceTimersByTime(1000);
    expect(sent).toEqual(['WATCHDOG=1', 'WATCHDOG=1']);
    expect(stalls).toEqual([2001, null]);
    n.stopping('bye');
    vi.advanceTimersByTime(5000);
    expect(sent.at(-1)).toBe('STOPPING=1\nSTATUS=bye');
  });

  it('reports a failed send once per kind until one succeeds', () => {
    const errors: [string, number][] = [];
    const n = new ServiceNotifier({
      settings: { socket: '/n', watchdogMs: 1000 },
      send: () => -111,
      progress: () => progress,
      onSendError: (message, errno) => errors.push([message, errno]),
    });
    n.startWatchdog();
    vi.advanceTimersByTime(3000);
    n.ready('x');
    expect(errors).toEqual([
      ['WATCHDOG=1', -111],
      ['READY=1\nSTATUS=x', -111],
    ]);
    n.stopWatchdog();
  });
});
