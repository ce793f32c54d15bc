// The enforcement mode: whether a request the rules deny is refused
// (enforce) or let through and only recorded (permissive). A domain fact
// shared by the filesystem edge, which applies it, and the admin API, which
// shows and switches it.

/** enforce: requests the rules deny are refused; permissive: let through and recorded. */
export const ENFORCEMENT_MODES = ['enforce', 'permissive'] as const;

export type EnforcementMode = (typeof ENFORCEMENT_MODES)[number];
