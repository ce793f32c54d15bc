// The one module where TypeScript meets the native addon: the patched
// fuse-native binding, built from source at install together with the
// project's C in native/. Everything else imports the addon from here, so a
// change of binding (or of its loader) touches this file only.
import Fuse from 'fuse-native';

export { Fuse };

/** The project's own native calls (native/*.c), as the addon exports them. */
export const native = Fuse.native;

export type Operations = Fuse.Operations;
export type RequestCaller = Fuse.RequestCaller;
export type TimeSpec = Fuse.TimeSpec;
