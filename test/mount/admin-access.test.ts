// Who can reach the admin socket: root and members of the admin group only.
// Real other users, switched to with setpriv, try to connect; the server
// runs in this process over a temp RuleStore with admin group 3001.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AdminServer } from '../../src/admin/server';
import { AdminService } from '../../src/admin/service';
import { SystemNameResolver } from '../../src/system/names';
import { RuleStore } from '../../src/store/store';
import { ACLFS, requireFuse, runAs, type Identity } from '../helpers/mounts';
import { native } from '../../src/native/binding';
import { describeWithFuse } from '../helpers/facilities';

const ADMIN_GID = 3001;
const OUTSIDER: Identity = { uid: 2001, gid: 2001 };
const MEMBER: Identity = { uid: 2001, gid: 2001, groups: [ADMIN_GID] };
const PRIMARY_MEMBER: Identity = { uid: 2002, gid: ADMIN_GID };
const OTHER_GROUP: Identity = { uid: 2003, gid: 2003, groups: [3002] };

// Connects, and on success asks GET /v1/status; prints one JSON line.
const PROBE = `
const http = require('node:http');
const req = http.get({ socketPath: process.argv[1], path: '/v1/status' }, (res) => {
  let body = '';
  res.on('data', (d) => (body += d));
  res.on('end', () => console.log(JSON.stringify({ connected: true, status: res.statusCode, rules: JSON.parse(body).rules })));
});
req.on('error', (err) => console.log(JSON.stringify({ connected: false, code: err.code })));
`;

let dir: string;
let store: RuleStore;
let server: AdminServer;
let sock: string;

beforeAll(async () => {
  // setpriv and real uids: root only (CI runs as root and fails here, never skips, without it).
  requireFuse();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-access-'));
  // Like /run: everyone may enter the parent; the runtime dir below is 0750.
  fs.chmodSync(dir, 0o755);
  store = RuleStore.open(path.join(dir, 'db'), native);
  sock = path.join(dir, 'run', 'aclfs.sock');
  server = await AdminServer.start({
    socketPath: sock,
    gid: ADMIN_GID,
    accounts: new SystemNameResolver(),
    api: new AdminService({ store, identity: null, defaultPolicy: 'deny', version: 'test' }),
  });
});

afterAll(async () => {
  await server?.close();
  store?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function probe(who: Identity): Promise<{ connected: boolean; code?: string; status?: number }> {
  const res = await runAs(who, process.execPath, ['-e', PROBE, sock]);
  expect(res.stderr).toBe('');
  return JSON.parse(res.stdout) as { connected: boolean; code?: string; status?: number };
}

describeWithFuse('admin socket access', () => {
  it('refuses a uid that is neither root nor in the admin group (EACCES)', async () => {
    expect(await probe(OUTSIDER)).toEqual({ connected: false, code: 'EACCES' });
    expect(await probe(OTHER_GROUP)).toEqual({ connected: false, code: 'EACCES' });
  });

  it('lets a member of the admin group in, by supplementary or primary group', async () => {
    expect(await probe(MEMBER)).toEqual({ connected: true, status: 200, rules: 0 });
    expect(await probe(PRIMARY_MEMBER)).toEqual({ connected: true, status: 200, rules: 0 });
  });

  it('the socket itself (0660) refuses an outsider even where the directory would let them through', async () => {
    const dirMode = fs.statSync(path.dirname(sock)).mode & 0o7777;
    fs.chmodSync(path.dirname(sock), 0o755);
    try {
      expect(await probe(OUTSIDER)).toEqual({ connected: false, code: 'EACCES' });
      expect(await probe(MEMBER)).toMatchObject({ connected: true, status: 200 });
    } finally {
      fs.chmodSync(path.dirname(sock), dirMode);
    }
  });

  it('the CLI tells an outsider "permission denied" on one line and exits 5; a member gets the status', async () => {
    const denied = await runAs(OUTSIDER, process.execPath, [ACLFS, 'status', '--socket', sock]);
    expect(denied.code).toBe(5);
    expect(denied.stdout).toBe('');
    expect(denied.stderr.trim().split('\n')).toHaveLength(1);
    expect(denied.stderr).toMatch(/^aclfs: permission denied on the aclfs admin socket .* \(root and members of the admin group only\)\n$/);
    const member = await runAs(MEMBER, process.execPath, [ACLFS, 'status', '--json', '--socket', sock]);
    expect(member.stderr).toBe('');
    expect(member.code).toBe(0);
    expect(JSON.parse(member.stdout)).toMatchObject({ version: 'test', rules: 0 });
  });
});
