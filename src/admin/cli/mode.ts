// aclfs mode: show or switch the daemon's enforce/permissive mode (the
// daemon's own state, never in the database, so --db is refused).
import { Argument, type Command } from 'commander';
import { ENFORCEMENT_MODES, type EnforcementMode } from '../protocol';
import type { CliContext, TargetOptions } from './context';
import { daemonOnlyDbOption, json, jsonOption, socketOption } from './options';

export function addModeCommand(program: Command, { io, withDaemon }: CliContext): void {
  program
    .command('mode')
    .description("show the daemon's mode, or set it: enforce refuses what the rules deny, permissive lets it through and records it")
    .addArgument(new Argument('[mode]', 'the mode to switch to').choices([...ENFORCEMENT_MODES]))
    .addOption(socketOption())
    .addOption(daemonOnlyDbOption())
    .addOption(jsonOption())
    .action(async (mode: EnforcementMode | undefined, o: TargetOptions & { json: boolean }) => {
      const result = await withDaemon(o, 'the enforce/permissive mode', (api) => (mode === undefined ? api.getMode() : api.setMode(mode)));
      io.stdout(o.json ? json(result) : `${result.mode}\n`);
    });
}
