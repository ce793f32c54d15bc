// The closed set of error classes every layer speaks. The admin server maps
// them to HTTP status codes and the CLI to exit codes, each in one place.

export const ERROR_CLASSES = [
  'invalid',
  'not_found',
  'conflict',
  'forbidden',
  'unavailable',
  'internal',
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

export const invalid = (message: string): AclfsError => new AclfsError('invalid', message);
export const notFound = (message: string): AclfsError => new AclfsError('not_found', message);
export const conflict = (message: string): AclfsError => new AclfsError('conflict', message);

/** Any thrown value as an AclfsError; unknown failures are `internal`. */
export function asAclfsError(err: unknown): AclfsError {
  if (err instanceof AclfsError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AclfsError('internal', message);
}
