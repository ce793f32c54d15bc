// Man-style help for every `aclfs` command: NAME, SYNOPSIS, DESCRIPTION,
// ARGUMENTS, OPTIONS, COMMANDS, EXIT STATUS, FILES, EXAMPLES, SEE ALSO.
// The synopsis, arguments, options and subcommands are read from the
// commander program itself, so they cannot drift from what is parsed; the
// prose that commander has no place for (long descriptions, examples) is in
// PAGES below, keyed by the command's full name, and a test checks that every
// command has a page and every page a command.
import type { Argument, Command, Help, Option } from 'commander';

export interface ManPage {
  /** Paragraphs after the one-line description. */
  readonly description?: readonly string[];
  readonly examples: readonly string[];
  /** Extra EXIT STATUS lines, before the common ones. */
  readonly exit?: readonly string[];
}

const TARGET =
  'The command talks to the running daemon over its admin socket (--socket, default /run/aclfs/aclfs.sock) or, with --db DIR, works on the rule database directly, with no daemon needed.';

export const PAGES: Readonly<Record<string, ManPage>> = {
  aclfs: {
    description: [
      'aclfs mounts a protected directory through FUSE and lets every open, read and change through only if a rule in its LMDB database allows it for the calling user and groups. Unix permissions still apply unless the mount is --rules-only; the rules can only take access away.',
      'Administrators manage the rules with the commands below, through the admin socket of a running mount (HTTP+JSON on a Unix socket, also usable with curl --unix-socket) or on the database directly with --db. `aclfs help COMMAND` or `aclfs COMMAND --help` shows the page of one command.',
    ],
    examples: [
      'aclfs mount /srv/data /srv/protected --db /var/lib/aclfs',
      'aclfs rule add /docs/secret.txt --owner 0 --default --- --user alice:r--',
      'aclfs check /docs/secret.txt --uid alice --access r',
      'aclfs audit --follow',
      'source <(aclfs completion bash)',
    ],
  },
  'aclfs mount': {
    description: [
      'Serves SRC, filtered, at MNT in the foreground until SIGINT or SIGTERM, then unmounts and exits 0. The admin socket is served for as long as the mount. A stale mount left at MNT by a crashed daemon is cleared at start; a live one is refused. If the mount is removed from outside (aclfs unmount, fusermount -u), the daemon exits.',
      'SRC, MNT, --db and the directory of --socket are checked before anything is created: a missing SRC or MNT is exit status 3, one that is not a directory 2, a MNT that is not empty (without --in-place) or already a live FUSE mount 4. The socket\'s directory must be the daemon\'s own (0750 or tighter, owned by root): a shared one such as /tmp is refused, never changed; give a directory of its own, which is created 0750.',
      'Logs are JSON lines on standard error; every denial is logged with its reason and recorded in the audit log (`aclfs audit`; --audit deny|allow|all says which decisions, --audit-max-records and --audit-max-age bound it, --audit-db places it). The daemon starts in enforce mode (see `aclfs mode`).',
      'With --in-place the mount covers SRC itself. Processes whose working directory, root or open files are inside SRC when it mounts keep reaching the tree beneath, unfiltered, through what they hold: the mount is refused (exit status 4, naming them) unless --force is given, which mounts anyway and logs them.',
      'Every open file holds a descriptor in the daemon: it raises its soft descriptor limit to the hard limit at start and logs the limit obtained. It keeps 1,024 descriptors for its own work; the rest (at most 65,536) are for open files and directories, of which one non-root user may hold a quarter, or --max-open-per-user N. Past either bound, opens fail with EMFILE until files are closed; the daemon and the mount stay up.',
      'Prometheus metrics (decisions by result and operation, decision latency, fast-path hits, the decision cache, FUSE requests by operation, open handles, rules, the audit log, the process) are served at GET /metrics on the admin socket (curl --unix-socket SOCKET http://aclfs/metrics). --metrics-listen [HOST:]PORT serves them over plain HTTP on TCP too, and nothing else there; a port alone listens on 127.0.0.1. The listener has no authentication and the metrics show how the tree is used: bind beyond the loopback only on purpose. A malformed address is exit status 2, one in use 4, before anything is mounted.',
      'With --sync etcd://HOST:PORT/PREFIX the rules are those of a fleet, kept in etcd under PREFIX/rules/ (see `aclfs push` and docs/fleet.md): the daemon loads them into its database, then applies each change as etcd commits it. The filter reads only the local database, so while etcd is unreachable the host keeps enforcing the last rule set it applied; `aclfs status` says how stale it is. Rule writes through the admin API are refused (exit status 4) unless --sync-writable, which sends them to etcd guarded by compare-and-swap.',
      'A link or rename that would put a file or directory under another rule than the one that governs it fails with EXDEV (mv then copies, which reads the data through the rules). FIFOs, sockets and device nodes are not shown, and none can be made through the mount (EPERM); names that are not valid UTF-8 are not listed and fail with EILSEQ. With --rules-only, new files are still their maker\'s, and only a file\'s owner (or root) changes its mode, owner or times.',
    ],
    examples: [
      'aclfs mount /srv/data /srv/protected',
      'aclfs mount /srv/data /srv/protected --db /var/lib/aclfs --admin-group aclfs --revoke immediate',
      'aclfs mount /srv/data /srv/data --in-place',
      'aclfs mount /srv/data /srv/protected --metrics-listen 9464',
    ],
  },
  'aclfs unmount': {
    description: [
      'Unmounts an aclfs mount; its daemon notices and exits 0. Only a FUSE mount is ended, never another filesystem (exit status 2). A directory that is not mounted is exit status 3; a busy mount (a process has a file open or its working directory inside) is 4, with fusermount\'s reason.',
    ],
    examples: ['aclfs unmount /srv/protected'],
  },
  'aclfs rule': {
    description: [
      'A rule governs one file or directory: its owner always gets rwx, each --user and --group entry gets its access, everyone else gets the default access. A --recursive directory rule also governs everything below it that has no closer rule. Access is rwx-style (r-x) or a number 0-7.',
      'An open is decided when it is made; a revoke stops new opens at once. A file served by passthrough is then read by the kernel directly, so a revoke does not stop its open handles. The files of a --revocable rule are never served by passthrough: a revoke also stops their open handles at the next read that misses the page cache (every read under --revoke immediate).',
      'A rule marked --audit-only is decided as usual, but a request it denies is let through and recorded in the audit log as "would deny" (enforced false): try a rule out on real traffic before enforcing it (`aclfs rule set` without --audit-only). Other rules are still enforced; `aclfs mode permissive` lets every denial through.',
      'Each command talks to the running daemon over its admin socket (--socket, default /run/aclfs/aclfs.sock) or, with --db DIR, works on the rule database directly, with no daemon needed.',
    ],
    examples: ['aclfs rule ls', 'aclfs rule help add'],
  },
  'aclfs rule add': {
    description: [
      'Creates the rule for PATH; fails with exit status 4 if PATH already has one (use `aclfs rule set` to replace it).',
      'An entry given as USER:ACCESS@TIME (or every entry without its own @TIME, with --until TIME) expires then: TIME is RFC 3339 with its offset (2026-12-31T18:00Z). From then on it grants nothing, with no action needed: new opens, opens the fast path replays and open files (at their next read that misses the page cache) all follow it within a quarter of a second. `rule show` and `ls` mark it expired; it is removed a week later.',
      TARGET,
    ],
    examples: [
      'aclfs rule add /docs --recursive --owner 0 --default r-x --group staff:rw-',
      'aclfs rule add /docs/secret.txt --owner 0 --default --- --user alice:r-- --user 1001:rw-',
      'aclfs rule add /payroll --recursive --revocable --owner 0 --default --- --group hr:r--',
      'aclfs rule add /projects --recursive --audit-only --owner 0 --default --- --group dev:rwx',
      'aclfs rule add /reports --recursive --owner 0 --default --- --user bob:r-- --until 2026-12-31T18:00Z',
      'aclfs rule add /reports --recursive --owner 0 --default --- --user alice:rw- --user bob:r--@2026-12-31T18:00Z',
    ],
  },
  'aclfs rule set': {
    description: ['Replaces the whole rule for PATH (owner, default access, entries, recursive, revocable, audit-only), or creates it: a flag not given is off.', TARGET],
    examples: ['aclfs rule set /docs/secret.txt --owner 0 --default --- --user alice:r--'],
  },
  'aclfs rule rm': {
    description: ['Removes a rule, named by its id or by its path.', TARGET],
    examples: ['aclfs rule rm /docs/secret.txt', 'aclfs rule rm 12'],
  },
  'aclfs rule show': {
    description: ['Shows one rule, named by its id or by its path, with the file it is bound to.', TARGET],
    examples: ['aclfs rule show /docs/secret.txt', 'aclfs rule show 12 --json'],
  },
  'aclfs rule ls': {
    description: [
      'Lists rules in path order, one a line: id, default access, flags (rec: recursive, rev: revocable), owner, path and entries, then "audit-only" for such a rule. With --limit, when more rules follow, a last line on standard error (on a terminal only) gives the --cursor of the next page; --json gives it as nextCursor.',
      TARGET,
    ],
    examples: ['aclfs rule ls', 'aclfs rule ls /docs --limit 20', 'aclfs rule ls --db /var/lib/aclfs --json'],
  },
  'aclfs import': {
    description: [
      'Imports a rule file (JSON: {"version": 1, "rules": [...]}) atomically: a file with one bad rule changes nothing, and the error names the rule and the field. Rules are matched by path: an existing rule for a path is replaced, a new path gets a new rule.',
      '--dry-run writes nothing and prints what would change, by path (+ added, ~ changed with what was, - removed). --confirm-within DURATION applies the file and puts the rule set of before it back by itself unless `aclfs confirm` follows in time, as network equipment does with a confirmed commit: a rule file that locks the administrator out undoes itself. The mark is kept in the database, so a daemon stopped meanwhile rolls back when it starts again; the rollback undoes every rule change made since the import.',
      TARGET,
    ],
    examples: [
      'aclfs import rules.json',
      'aclfs import rules.json --dry-run',
      'aclfs import rules.json --replace --confirm-within 2m && aclfs confirm',
      'aclfs import rules.json --db /var/lib/aclfs --replace',
      'aclfs export | aclfs import - --db /tmp/copy',
    ],
  },
  'aclfs confirm': {
    description: ['Keeps the rules of the import made with --confirm-within, before its deadline; after it, they have been rolled back already. Prints whether an import was awaiting confirmation.'],
    examples: ['aclfs confirm'],
  },
  'aclfs push': {
    description: [
      'Validates a rule file as `aclfs import` does (one bad rule and nothing is pushed), then makes it the rule set under the etcd prefix of --sync, in one etcd transaction: only the rules that differ are written, and the transaction holds only if no rule changed in etcd since they were read (else exit status 4; push again). Every daemon mounted with --sync on that prefix applies it within moments. User and group names are resolved on this host; etcd holds numeric ids.',
      'With --dry-run it prints one line per difference (+ added, ~ changed with the value it replaces, - removed) and writes nothing. etcd bounds one transaction (its --max-txn-ops, default 128 operations, and --max-request-bytes): raise them on the etcd servers to change more rules in one push. See docs/fleet.md.',
    ],
    examples: ['aclfs push rules.json --sync etcd://127.0.0.1:2379/aclfs --dry-run', 'aclfs push rules.json --sync etcds://etcd1:2379,etcd2:2379/aclfs --sync-ca ca.pem'],
  },
  'aclfs export': {
    description: ['Prints every rule as a rule file, the format `aclfs import` reads.', TARGET],
    examples: ['aclfs export > rules.json', 'aclfs export --db /var/lib/aclfs'],
  },
  'aclfs check': {
    description: [
      'A dry-run decision: whether the caller would get ACCESS to PATH, and why (which rule, which entry, or the default). Nothing is opened and nothing is logged as a denial.',
      'PATH is a path inside the mount (/docs/a.txt) or, with a daemon, the same file under its mountpoint (/srv/protected/docs/a.txt). When no such file is in the source, a rule bound to a file cannot apply: the decision is by path only, the output says so, and a warning line goes to standard error.',
      'With --rules FILE the decision is taken against that candidate rule file instead of the rules in force, applying nothing: what would this rule set decide? Its rules are by path (none is bound to a file yet), and the rule ids named are their places in the file.',
      'With --explain, every step of the decision follows, numbered, in the order the mount takes them: whether the daemon\'s decision cache holds this answer (with a daemon), the inode index (hit, miss, or an entry ignored), the exact path, each ancestor walked (a rule that is not recursive is skipped), then the entry that grants or the default policy. With --json the steps are in "steps".',
      'A denial by an audit-only rule exits 1 like any other (the rules deny it); the output adds that the mount lets it through and records it as "would deny".',
      TARGET,
    ],
    examples: [
      'aclfs check /docs/secret.txt --uid alice --access r',
      'aclfs check /srv/protected/docs/a.txt --uid alice --access r --explain',
      'aclfs check /docs --uid 1001 --gid 100 --groups 27,100 --access rw --json',
    ],
    exit: ['0   allowed', '1   denied'],
  },
  'aclfs access': {
    description: [
      'Who gets which bits on PATH by the rules: the governing rule (a rule bound to the file counts, as for an open) and every user and group it names with their bits, the owner first and everyone else last; with no rule, the default policy for everyone.',
      'With --uid: what that user (with --gid and --groups, or the groups a login would give) can reach at and below PATH or --path (default /): every rule there with the bits it gives, and what governs the rest. Read from the rules alone, never by walking the tree.',
      'Both list the rules only: unless the mount runs --rules-only, the kernel also checks Unix permissions.',
      TARGET,
    ],
    examples: ['aclfs access /docs/report.pdf', 'aclfs access --uid alice --path /docs', 'aclfs access --uid 1001 --json'],
  },
  'aclfs history': {
    description: [
      'The commits that changed the rule set, newest first: generation, time, who made it (the uid over the socket, the CLI on the database itself, a rename through the mount moving rules with their files, the fleet sync), and the paths whose rule changed. Which file a rule is bound to is this host\'s state and is not history.',
      'The daemon keeps the newest --history-limit records (default 1000); a commit that changes more than 100,000 rules is recorded by its count only. Each generation from the floor the output names on can be compared (`aclfs diff`) and restored (`aclfs rollback`).',
      TARGET,
    ],
    examples: ['aclfs history', 'aclfs history --limit 100 --json'],
  },
  'aclfs diff': {
    description: [
      'What changed in the rule set from generation FROM to TO (default: now), by path, in the rule file\'s form: `+ PATH RULE` added, `~ PATH RULE` changed (then `was RULE`), `- PATH RULE` removed.',
      TARGET,
    ],
    examples: ['aclfs diff 41', 'aclfs diff 41 45 --json'],
  },
  'aclfs rollback': {
    description: [
      'Puts the rule set of generation GEN back in force in one commit: afterwards `aclfs export` prints what it printed at GEN, byte for byte, and the next open is decided by it. Rules whose path and content did not change stay as they are, bound to their files. The rollback is itself a commit in the history, so it can be rolled back.',
      'With fleet sync the rule set goes back in etcd (with --sync-writable; refused otherwise), as any rule write does.',
      TARGET,
    ],
    examples: ['aclfs rollback 41'],
    exit: ['0   restored (or nothing differed)', '2   GEN is not a generation of this database', '4   GEN is older than the history reaches'],
  },
  'aclfs replay': {
    description: [
      'Decides the accesses the audit log recorded (since --since, before --until) again against a candidate rule file, and lists those whose decision would change, grouped by the candidate rule that decides them: how many denied then would be allowed, how many allowed then would be denied, and every such access (up to --limit per rule, default 1000; all are counted). Nothing is applied.',
      'Only what the log holds can be replayed: at audit level deny it holds denials only, so no allow can show as a new denial (`aclfs audit-level all` records allows too). The candidate is decided by path (its rules are bound to no file yet). Records of admin changes, and of callers whose supplementary groups were unknown where the candidate has group entries, are counted as skipped. Needs the running daemon, which keeps the log.',
    ],
    examples: ['aclfs replay candidate.json', 'aclfs replay candidate.json --since 7d --json'],
  },
  'aclfs status': {
    description: ['Shows what the running daemon serves: source, mountpoint, database, socket, policy, enforce or permissive mode, rule generation and count, decision counters, cache hit rate, uptime and version.'],
    examples: ['aclfs status', 'aclfs status --socket /run/aclfs/aclfs.sock --json'],
  },
  'aclfs audit': {
    description: [
      'Prints the audit log of the running daemon, oldest first, one record a line: seq, time, state (enforced: refused; permissive: denied but let through by permissive mode; audit-only: let through by an audit-only rule, reason "would deny: ..."; allowed; admin: a change made over the admin API), uid, gid and pid of the caller, operation, requested access, path, the reason (as `aclfs check` words it), and the caller\'s command line where it could be read. --json adds every field: groups, program, cmdline, file (dev:ino), decision, rule, rulePath, entry (the matched ACL entry, e.g. user:1001:r--, or default:deny) and epoch.',
      'Records are every denial (at every level: denials cannot be turned off), every allow with `aclfs audit-level allow` (or `all`, the same), what permissive mode or an audit-only rule let through, and each change of rules, mode or audit level made over the admin socket (op admin, by the socket peer\'s uid and pid). The daemon keeps them on disk (audit/ inside --db, or --audit-db): they survive restarts, at most --audit-max-records (1,000,000) and none older than --audit-max-age (30d), oldest dropped first.',
      'Filters: --since/--until (ISO 8601, or a duration ago: 15m, 2h, 7d), --uid, --path (the path or anything below it, by whole components), --decision allow|deny, --op, --rule; all must hold. Without --limit every matching record after --after is printed. With --follow the stored matching records come first, then each new one as it happens, until SIGINT or SIGTERM (exit 0) or until the daemon goes away (exit 6). --json prints {"records": [...], "next": SEQ} (pass next as --after to continue), or with --follow one JSON record per line.',
      'The audit log is the daemon\'s own: this command talks to it over its admin socket (--socket, default /run/aclfs/aclfs.sock); there is nothing to read with --db.',
    ],
    examples: [
      'aclfs audit',
      'aclfs audit --after 120 --limit 20 --json',
      'aclfs audit --since 1h --uid 1001 --path /docs --decision deny',
      'aclfs audit --op admin',
      'aclfs audit --follow --path /srv/secret --json | jq .program',
    ],
  },
  'aclfs audit-level': {
    description: [
      'Without LEVEL, prints which decisions the running daemon records in its audit log; with LEVEL, switches it and prints the new level: deny (denials, the default), allow (allows), all (both). Changes over the admin API are always recorded. The level starts as the mount\'s --audit and is not kept across restarts.',
      'While allows are recorded, the daemon publishes no allow to its fast path, so every open reaches it and is recorded: opens cost a round trip to the daemon (as with the fast path off) and the log grows with every open. Back at deny, the fast path serves repeated opens again.',
    ],
    examples: ['aclfs audit-level', 'aclfs audit-level all', 'aclfs audit-level deny --json'],
  },
  'aclfs mode': {
    description: [
      'Without MODE, prints the mode of the running daemon; with MODE, switches it and prints the new mode. In enforce mode a request the rules deny is refused. In permissive mode it is let through and recorded in the audit log as not enforced (and logged); Unix permissions still apply. Use it to try out new rules on a live system with `aclfs audit --follow`.',
      'A switch takes effect for the very next open, and for the next read or write of an open file that reaches the daemon. Every daemon starts in enforce mode: the mode is not kept across restarts. The mode is the daemon\'s own: this command talks to it over its admin socket (--socket, default /run/aclfs/aclfs.sock).',
    ],
    examples: ['aclfs mode', 'aclfs mode permissive', 'aclfs mode enforce', 'aclfs mode --json'],
  },
  'aclfs completion': {
    description: [
      'Prints a bash completion script for aclfs, generated from this program itself, so it completes exactly the commands and options this version has.',
    ],
    examples: ['source <(aclfs completion bash)', 'aclfs completion bash > /etc/bash_completion.d/aclfs'],
  },
};

const COMMON_EXIT = [
  '0   success',
  '2   usage error or invalid input',
  '3   not found',
  '4   conflict',
  '5   forbidden',
  '6   daemon unreachable',
  '7   not built (run npm ci && npm run build)',
  '8   internal error',
];

const FILES = [
  ['/var/lib/aclfs', 'default rule database (an LMDB environment directory, mode 0700)'],
  ['/run/aclfs/aclfs.sock', 'default admin socket (mode 0660, root and the admin group, in a 0750 directory)'],
] as const;

const INDENT = 7;
const TERM_INDENT = 14;

/** The full name of a command: "aclfs rule add". */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c !== null; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Every command of the tree, the root first. */
export function allCommands(root: Command): Command[] {
  return [root, ...root.commands.flatMap((c) => allCommands(c))];
}

/** The value placeholder of an option's flags: "--db <path>" → "<path>". */
export function optionValue(option: Option): string | null {
  const m = /([<[][^>\]]+[>\]])\s*$/.exec(option.flags);
  return m?.[1] ?? null;
}

/** An option repeats when its value accumulates into an array. */
export function isRepeatable(option: Option): boolean {
  return option.variadic || Array.isArray(option.defaultValue);
}

function optionSynopsis(option: Option): string {
  const name = option.long ?? option.short ?? option.flags;
  const value = optionValue(option);
  const text = value === null ? name : `${name} ${value}`;
  const repeated = isRepeatable(option) ? '...' : '';
  return option.mandatory ? `${text}${repeated}` : `[${text}]${repeated}`;
}

function argumentSynopsis(arg: Argument): string {
  const name = `${arg.name()}${arg.variadic ? '...' : ''}`;
  return arg.required ? `<${name}>` : `[${name}]`;
}

/**
 * `text` (or the given tokens, kept whole) wrapped to `width`, every line
 * starting with `indent` spaces (the first line with `first`).
 */
function wrap(text: string | readonly string[], width: number, indent: number, first = ' '.repeat(indent)): string {
  const words = typeof text === 'string' ? text.split(/\s+/).filter((w) => w !== '') : text;
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const word of words) {
    if (!empty && line.length + 1 + word.length > width) {
      lines.push(line);
      line = ' '.repeat(indent);
      empty = true;
    }
    line += empty ? word : ` ${word}`;
    empty = false;
  }
  lines.push(line);
  return lines.join('\n');
}

/** "text" → "text."; leaves text ending in punctuation alone. */
function sentence(text: string): string {
  const t = text.trim();
  return t === '' || /[.!?]$/.test(t) ? t : `${t}.`;
}

function optionDetails(option: Option): string {
  const parts = [sentence(option.description)];
  if (option.argChoices) parts.push(`One of: ${option.argChoices.join(', ')}.`);
  const dflt = option.defaultValue;
  if (dflt !== undefined && dflt !== false && !(Array.isArray(dflt) && dflt.length === 0) && !/\bdefault\b/i.test(option.description)) {
    parts.push(`Default: ${String(dflt)}.`);
  }
  if (option.mandatory) parts.push('Required.');
  if (isRepeatable(option) && !/repeatable/i.test(option.description)) parts.push('May be given more than once.');
  return parts.join(' ');
}

/** The man-style page of `cmd`. */
export function formatManPage(cmd: Command, helper: Help): string {
  const width = Math.max(60, Math.min(helper.helpWidth ?? 80, 100));
  const path = commandPath(cmd);
  const page = PAGES[path];
  const out: string[] = [];
  const section = (title: string, body: string[]): void => {
    if (body.length === 0) return;
    out.push(title, ...body, '');
  };

  section('NAME', [wrap(`${path} - ${cmd.description()}`, width, INDENT)]);

  const options = helper.visibleOptions(cmd);
  const args = helper.visibleArguments(cmd);
  const subcommands = helper.visibleCommands(cmd);
  const synopsis: string[] = [];
  const synopsisLine = (words: readonly string[]): string =>
    wrap([path, ...words], width, INDENT + path.length + 1, ' '.repeat(INDENT));
  if (cmd.commands.length > 0) synopsis.push(synopsisLine(['COMMAND', '[options]', '[arguments]']));
  const own = options.filter((o) => o.long !== '--help');
  if (cmd.commands.length === 0 || own.length > 0) {
    synopsis.push(synopsisLine([...own.map(optionSynopsis), ...cmd.registeredArguments.map(argumentSynopsis)]));
  }
  section('SYNOPSIS', synopsis);

  section(
    'DESCRIPTION',
    (page?.description ?? [sentence(cmd.description())]).flatMap((p, i, all) => [wrap(p, width, INDENT), ...(i < all.length - 1 ? [''] : [])]),
  );

  section(
    'ARGUMENTS',
    args.map((a) => `${' '.repeat(INDENT)}${argumentSynopsis(a)}\n${wrap(`${a.description}${a.argChoices ? ` One of: ${a.argChoices.join(', ')}.` : ''}${a.defaultValue !== undefined ? ` Default: ${String(a.defaultValue)}.` : ''}`, width, TERM_INDENT)}`),
  );

  section(
    'OPTIONS',
    options.map((o) => `${' '.repeat(INDENT)}${o.flags}\n${wrap(optionDetails(o), width, TERM_INDENT)}`),
  );

  section(
    'COMMANDS',
    subcommands.map((c) => {
      const term = helper.subcommandTerm(c).replace(/\s*\[options\]/, '');
      return `${' '.repeat(INDENT)}${term}\n${wrap(helper.subcommandDescription(c), width, TERM_INDENT)}`;
    }),
  );

  section('EXIT STATUS', [...(page?.exit ?? []), ...COMMON_EXIT.filter((l) => !(page?.exit ?? []).some((e) => e.startsWith(l.slice(0, 4))))].map((l) => `${' '.repeat(INDENT)}${l}`));

  if (path === 'aclfs' || path === 'aclfs mount') {
    section(
      'FILES',
      FILES.map(([file, what]) => `${' '.repeat(INDENT)}${file}\n${wrap(what, width, TERM_INDENT)}`),
    );
  }

  section('EXAMPLES', (page?.examples ?? []).map((e) => `${' '.repeat(INDENT)}${e}`));

  const related = new Set<string>();
  if (cmd.parent !== null) related.add(`${commandPath(cmd.parent)} --help`);
  for (const c of cmd.commands) related.add(`${commandPath(c)} --help`);
  if (path !== 'aclfs') related.add('aclfs --help');
  section('SEE ALSO', [wrap([...related].join(', '), width, INDENT)]);

  return `${out.join('\n').trimEnd()}\n`;
}

/** Gives `root` and every command below it the man-style help. */
export function useManHelp(root: Command): void {
  for (const cmd of allCommands(root)) {
    cmd.configureHelp({ formatHelp: (c: Command, helper: Help) => formatManPage(c, helper) });
  }
}
