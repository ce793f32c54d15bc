// aclfs status: what the daemon serves, and how it has been doing.
import type { Command } from 'commander';
import type { StatusResponse } from '../protocol';
import type { CliContext } from './context';
import { counted, json, jsonOption, sizeText, socketOption } from './options';

function formatDuration(seconds: number): string {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = [d > 0 ? `${d}d` : '', h > 0 ? `${h}h` : '', m > 0 ? `${m}m` : '', `${s % 60}s`].filter(Boolean);
  return parts.join('');
}

function statusText(st: StatusResponse): string {
  const opts = Object.entries(st.options)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
  const lines = [
    `aclfs ${st.version}, pid ${st.pid}, up ${formatDuration(st.uptimeSeconds)} (since ${st.startedAt})`,
    `source       ${st.source ?? '-'}`,
    `mountpoint   ${st.mountpoint ?? '-'}${st.mountpoint !== null && !st.mounted ? ' (not mounted)' : ''}`,
    `database     ${st.db}`,
    `socket       ${st.socket ?? '-'}`,
    `policy       default ${st.defaultPolicy}${opts === '' ? '' : `; ${opts}`}`,
    ...(st.mode === null ? [] : [`mode         ${st.mode}${st.mode === 'permissive' ? ' (denials are let through and recorded)' : ''}`]),
    `generation   ${st.generation}`,
    `rules        ${st.rules}`,
    `decisions    ${st.decisions.allowed} allowed, ${st.decisions.denied} denied, ${counted(st.decisions.errors, 'error')}`,
  ];
  if (st.cache !== null) {
    const c = st.cache;
    lines.push(`cache        ${(c.hitRate * 100).toFixed(1)}% hits (${counted(c.hits, 'hit')}, ${counted(c.misses, 'miss', 'misses')}), ${c.size}/${c.maxSize} entries`);
  }
  if (st.fastPath !== null) {
    lines.push(`fast path    ${counted(st.fastPath.opens, 'open')}, ${counted(st.fastPath.reads, 'read')}, ${counted(st.fastPath.writes, 'write')} replayed in C`);
    lines.push(`listings     ${counted(st.fastPath.listedAttributes, 'entry', 'entries')} listed with their attributes`);
  }
  if (st.dataPath !== null) {
    const d = st.dataPath;
    const how =
      d.mode === 'passthrough'
        ? `passthrough (decided at open: a revoke stops new opens, and open files of revocable rules${
            d.passthroughMinSize > 0 ? `; files under ${sizeText(d.passthroughMinSize)} opened read-only through the daemon` : ''
          }), ${counted(d.passthroughOpens, 'open')}`
        : d.refusal !== null
          ? `daemon (passthrough refused: ${d.refusal})`
          : 'daemon (every read that misses the page cache is decided)';
    lines.push(`file data    ${how}`);
  }
  if (st.sync !== undefined) {
    const s = st.sync;
    const ago = (seconds: number | null): string => (seconds === null ? 'never' : `${formatDuration(seconds)} ago`);
    lines.push(
      `sync         ${s.state} ${s.source}, revision ${s.revision ?? '-'}${s.writable ? ', writable' : ''}; etcd answered ${ago(s.secondsSinceContact)}, last applied ${ago(s.secondsSinceApply)}`,
    );
    if (s.invalidPaths.length > 0) lines.push(`sync invalid ${s.invalidPaths.join(' ')} (values that do not parse: these paths grant nothing)`);
    if (s.state === 'unreachable' && s.lastError !== null) lines.push(`sync error   ${s.lastError}`);
  }
  if (st.audit !== undefined) {
    const a = st.audit;
    const what = a.level === 'deny' ? 'denials' : 'denials and allows';
    lines.push(
      `audit log    ${what}; ${counted(a.records, 'record')} (at most ${a.maxRecords}, ${formatDuration(a.maxAgeSeconds)}), ${a.queued} queued, ${a.dropped} dropped, ${a.failed} lost in failed writes`,
    );
  }
  if (st.workerLocals !== null) {
    lines.push(`workers      ${counted(st.workerLocals.created, 'thread slot')} made, ${st.workerLocals.idle} idle`);
  }
  return `${lines.join('\n')}\n`;
}

export function addStatusCommand(program: Command, { io, withApi }: CliContext): void {
  program
    .command('status')
    .description('what the daemon serves: mount, database, generation, rule count, decisions, cache, uptime, version')
    .addOption(socketOption())
    .addOption(jsonOption())
    .action(async (o: { socket?: string; json: boolean }) => {
      const st = await withApi(o, false, (api) => api.status());
      io.stdout(o.json ? json(st) : statusText(st));
    });
}
