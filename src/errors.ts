// The closed set of error classes every layer speaks. The admin server maps
// them to HTTP status codes and the CLI to exit codes, each in one place.

export const ERROR_CLASSES = [
  'invalid',
  'not_found',
  'conflict',
  'forbidden',
  'unavailable',
  'internal',
  // A request body over its endpoint's limit (HTTP 413).
  'too_large',
  // A known route asked with a method it does not serve (HTTP 405).
  'method_not_allowed',
] as const;

export type ErrorClass = (typeof ERROR_CLASSES)[number];

export class AclfsError extends Error {
  constructor(
    readonly code: ErrorClass,
    message: string,
  ) {
    super(message);
    this.name = 'AclfsError';
  }
}

/**
 * The rule database cannot be used as it is: its file is cut short, its
 * meta pages are not LMDB's, or a record cannot be read. An `internal`
 * error (the CLI's exit 8, HTTP 500) whose message is one line naming the
 * database directory, what is wrong and what to do.
 */
export class DamagedDatabaseError extends AclfsError {
  constructor(
    readonly dir: string,
    readonly problem: string,
  ) {
    super('internal', `database ${dir} is damaged: ${oneLine(problem)} (restore it from a backup or export/import)`);
    this.name = 'DamagedDatabaseError';
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

export const invalid = (message: string): AclfsError => new AclfsError('invalid', message);
export const notFound = (message: string): AclfsError => new AclfsError('not_found', message);
export const conflict = (message: string): AclfsError => new AclfsError('conflict', message);
export const forbidden = (message: string): AclfsError => new AclfsError('forbidden', message);
export const unavailable = (message: string): AclfsError => new AclfsError('unavailable', message);

export function isErrorClass(value: unknown): value is ErrorClass {
  return typeof value === 'string' && (ERROR_CLASSES as readonly string[]).includes(value);
}

/** Any thrown value as an AclfsError; unknown failures are `internal`. */
export function asAclfsError(err: unknown): AclfsError {
  if (err instanceof AclfsError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AclfsError('internal', message);
}
