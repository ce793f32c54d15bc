// The daemon's side of systemd's service notification protocol (sd_notify):
// READY=1 once it serves, STOPPING=1 as it begins to stop, and WATCHDOG=1
// pings while its FUSE requests make progress.
//
// The watchdog is fed by the request loop, not by a timer alone: a daemon
// whose JS thread runs but whose requests hang (the backing filesystem no
// longer answers) is not healthy, and systemd should restart it. So each
// ping first asks how long the oldest request still in flight has been in
// the daemon; past the watchdog interval no ping is sent. A mount with no
// requests at all is healthy (nothing is in flight). A JS thread that
// blocks sends nothing either.
//
// The datagram itself is sent by the native addon (Node has no AF_UNIX
// datagram sockets); main.ts passes it in, as it passes the progress reader.

/** Sends one datagram to the socket (a path or "@abstract"); 0 or -errno. */
export type DatagramSender = (socket: string, message: string) => number;

/** How far the request loop has come. */
export interface RequestProgress {
  readonly started: number;
  readonly finished: number;
  /** How long the oldest request still in flight has been in the daemon, in ms (0: none). */
  readonly oldestInFlightMs: number;
}

/** What the service manager asked of this process, from its environment. */
export interface NotifySettings {
  /** $NOTIFY_SOCKET: a path or "@abstract name"; null when not run with Type=notify. */
  readonly socket: string | null;
  /** $WATCHDOG_USEC in ms, when it is meant for this process ($WATCHDOG_PID); null: no watchdog. */
  readonly watchdogMs: number | null;
}

/**
 * The settings in `env` for process `pid`, as sd_notify(3) and
 * sd_watchdog_enabled(3) read them: a socket name that is neither a path nor
 * an abstract name (vsock:…) is not one this daemon can use; WATCHDOG_USEC
 * counts only if WATCHDOG_PID is unset or names this process. The variables
 * are removed from `env` (as libsystemd's unset_environment does), so that
 * the daemon's children never speak for it.
 */
export function notifySettingsFrom(env: NodeJS.ProcessEnv, pid: number): NotifySettings {
  const socket = env.NOTIFY_SOCKET;
  const usec = env.WATCHDOG_USEC;
  const watchdogPid = env.WATCHDOG_PID;
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  const usable = socket !== undefined && socket.length > 1 && (socket.startsWith('/') || socket.startsWith('@'));
  const forUs = watchdogPid === undefined || watchdogPid === '' || Number(watchdogPid) === pid;
  const micros = usec !== undefined && /^\d+$/.test(usec) ? Number(usec) : 0;
  return {
    socket: usable ? socket : null,
    watchdogMs: usable && forUs && micros > 0 ? Math.max(1, Math.floor(micros / 1000)) : null,
  };
}

export interface ServiceNotifierOptions {
  readonly settings: NotifySettings;
  readonly send: DatagramSender;
  readonly progress: () => RequestProgress;
  /** A message that could not be sent (-errno); told once per kind of message until one succeeds. */
  readonly onSendError?: (message: string, errno: number) => void;
  /** The watchdog stopped pinging (a request has been in flight this long), or started again (null). */
  readonly onStall?: (oldestInFlightMs: number | null) => void;
}

export class ServiceNotifier {
  private watchdog: NodeJS.Timeout | undefined;
  private stalled = false;
  private readonly failing = new Set<string>();

  constructor(private readonly options: ServiceNotifierOptions) {}

  /** Whether a service manager listens (Type=notify). */
  get enabled(): boolean {
    return this.options.settings.socket !== null;
  }

  /** The watchdog interval systemd enforces, in ms; null: none. */
  get watchdogMs(): number | null {
    return this.options.settings.watchdogMs;
  }

  /** The daemon serves: READY=1 with a status line. */
  ready(status: string): void {
    this.send(`READY=1\nSTATUS=${oneLine(status)}`);
  }

  /** The daemon begins to stop; the watchdog is not fed any more. */
  stopping(status: string): void {
    this.stopWatchdog();
    this.send(`STOPPING=1\nSTATUS=${oneLine(status)}`);
  }

  /**
   * Pings every half interval while no request has been in flight longer
   * than the interval. Nothing without a watchdog.
   */
  startWatchdog(): void {
    const interval = this.watchdogMs;
    if (!this.enabled || interval === null || this.watchdog !== undefined) return;
    const tick = (): void => {
      const { oldestInFlightMs } = this.options.progress();
      if (oldestInFlightMs > interval) {
        if (!this.stalled) this.options.onStall?.(oldestInFlightMs);
        this.stalled = true;
        return;
      }
      if (this.stalled) this.options.onStall?.(null);
      this.stalled = false;
      this.send('WATCHDOG=1');
    };
    this.watchdog = setInterval(tick, Math.max(1, Math.floor(interval / 2)));
    // The daemon's end is decided elsewhere; the pings never keep it alive.
    this.watchdog.unref();
    tick();
  }

  stopWatchdog(): void {
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private send(message: string): void {
    const socket = this.options.settings.socket;
    if (socket === null) return;
    const kind = message.slice(0, message.indexOf('='));
    const result = this.options.send(socket, message);
    if (result === 0) {
      this.failing.delete(kind);
      return;
    }
    if (!this.failing.has(kind)) this.options.onSendError?.(message, result);
    this.failing.add(kind);
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
