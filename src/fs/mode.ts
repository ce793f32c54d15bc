// Enforce / permissive: whether a request the rules deny is refused
// (enforce) or let through and only recorded (permissive), daemon-wide.
// Every daemon starts in enforce and the mode is never persisted: a restart
// always fails closed.

import type { AuditLevel } from '../rules/audit';
import type { EnforcementMode } from '../rules/mode';

export type { EnforcementMode };

export class ModeSwitch {
  private current: EnforcementMode = 'enforce';

  /**
   * `changed` runs after every actual change (not for a set to the mode in
   * force): the daemon advances the commit epoch there, so cached decisions,
   * replayed allows and vouched handles are all decided afresh.
   */
  constructor(private readonly changed: (mode: EnforcementMode, previous: EnforcementMode) => void = () => {}) {}

  get(): EnforcementMode {
    return this.current;
  }

  permissive(): boolean {
    return this.current === 'permissive';
  }

  /** Switches to `mode`; returns the mode now in force. */
  set(mode: EnforcementMode): EnforcementMode {
    if (mode !== this.current) {
      const previous = this.current;
      this.current = mode;
      this.changed(mode, previous);
    }
    return this.current;
  }
}

/**
 * Which decisions the audit log records (deny, allow, all), daemon-wide;
 * starts at the mount's --audit and is changed over the admin API.
 */
export class AuditLevelSwitch {
  private current: AuditLevel;

  /**
   * `changed` runs after every actual change: when allows start or stop
   * being recorded, the daemon advances the commit epoch, so allows
   * published to the fast path lapse (and are published again, or not,
   * as the new level says).
   */
  constructor(
    initial: AuditLevel,
    private readonly changed: (level: AuditLevel, previous: AuditLevel) => void = () => {},
  ) {
    this.current = initial;
  }

  get(): AuditLevel {
    return this.current;
  }

  /** Switches to `level`; returns the level now in force. */
  set(level: AuditLevel): AuditLevel {
    if (level !== this.current) {
      const previous = this.current;
      this.current = level;
      this.changed(level, previous);
    }
    return this.current;
  }
}
