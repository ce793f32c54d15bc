// The admin API in this process, for the CLI's --db mode: the edge between
// the CLI's arguments and the service. The CLI hands over what its options
// hold (ids or names, paths, bodies as typed), and every input is checked,
// and its names resolved, here as the socket server does it for a request
// (edge.ts), then passed on typed.
// Every method is async, so a refused input rejects as the server's would.

import { invalid } from '../errors';
import type { Accounts } from './accounts';
import {
  auditFilter,
  auditInput,
  canonicalPath,
  checkFileIdentity,
  checkRuleId,
  checkSeq,
  importInput,
  listInput,
  parseCheckRequest,
  parseReachRequest,
  parseReplayRequest,
  parseAuditLevel,
  parseMode,
  parseRuleBodyObject,
  parseRuleRequest,
  ruleAtPath,
} from './edge';
import {
  DEFAULT_AUDIT_LIMIT,
  type AuditFilterQuery,
  type AuditFollow,
  type AuditLevel,
  type AuditLevelResponse,
  type AuditPage,
  type AuditQuery,
  type AuditRecordView,
  type AccessResponse,
  DEFAULT_HISTORY_LIMIT,
  MAX_HISTORY_LIMIT,
  type ConfirmResponse,
  type ReplayRequest,
  type ReplayResponse,
  type DiffResponse,
  type HistoryResponse,
  type RollbackResponse,
  type CheckRequest,
  type ReachRequest,
  type ReachResponse,
  type ExportOptions,
  type CheckResponse,
  type ClosableAdminApi,
  type EnforcementMode,
  type ImportOptions,
  type ImportResponse,
  type ListQuery,
  type ModeResponse,
  type PutResult,
  type RuleBody,
  type RuleListResponse,
  type RuleView,
  type StatusResponse,
} from './protocol';
import type { AdminOperations } from './service';

export class LocalApi implements ClosableAdminApi {
  /**
   * `operations.close()` releases what they hold (the store opened for
   * them); `accounts` resolve names (main.ts: the system's files).
   */
  constructor(
    private readonly operations: AdminOperations & { close(): Promise<void> },
    private readonly accounts: Accounts,
  ) {}

  close(): Promise<void> {
    return this.operations.close();
  }

  async status(): Promise<StatusResponse> {
    return this.operations.status();
  }

  async listRules(query: ListQuery = {}): Promise<RuleListResponse> {
    return this.operations.listRules(listInput(query));
  }

  async createRule(body: RuleBody): Promise<RuleView> {
    return this.operations.createRule(parseRuleRequest(body, this.accounts));
  }

  async putRule(id: number, body: RuleBody): Promise<PutResult> {
    const ruleId = checkRuleId(id);
    return this.operations.putRule(ruleId, parseRuleRequest(body, this.accounts));
  }

  async setRuleByPath(path: string, body: RuleBody): Promise<PutResult> {
    const target = canonicalPath(path, 'path');
    return this.operations.setRuleByPath(ruleAtPath(target, parseRuleBodyObject(body), this.accounts));
  }

  async getRule(id: number): Promise<RuleView> {
    return this.operations.getRule(checkRuleId(id));
  }

  async deleteRule(id: number): Promise<RuleView> {
    return this.operations.deleteRule(checkRuleId(id));
  }

  async deleteRuleByPath(path: string): Promise<RuleView> {
    return this.operations.deleteRuleByPath(canonicalPath(path, 'path'));
  }

  async findByPath(path: string): Promise<RuleView> {
    return this.operations.findByPath(canonicalPath(path, 'path'));
  }

  async findByInode(dev: number, ino: number): Promise<RuleView> {
    const file = checkFileIdentity(dev, ino);
    return this.operations.findByInode(file.dev, file.ino);
  }

  async importRules(text: string, options?: ImportOptions): Promise<ImportResponse> {
    if (typeof text !== 'string') throw invalid('rule file must be JSON text');
    return this.operations.importRules(importInput(text, this.accounts, options));
  }

  async exportRules(options?: ExportOptions): Promise<string> {
    return this.operations.exportRules(options?.onProgress);
  }

  async check(request: CheckRequest): Promise<CheckResponse> {
    return this.operations.check(parseCheckRequest(request, this.accounts));
  }

  async access(path: string): Promise<AccessResponse> {
    return this.operations.access(canonicalPath(path, 'path'));
  }

  async reach(request: ReachRequest): Promise<ReachResponse> {
    return this.operations.reach(parseReachRequest(request, this.accounts));
  }

  async history(limit: number = DEFAULT_HISTORY_LIMIT): Promise<HistoryResponse> {
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT) throw invalid(`limit must be an integer 1-${MAX_HISTORY_LIMIT}`);
    return this.operations.history(limit);
  }

  async diff(from: number, to?: number): Promise<DiffResponse> {
    return this.operations.diff(from, to);
  }

  async rollback(generation: number): Promise<RollbackResponse> {
    return this.operations.rollback(generation);
  }

  async confirm(): Promise<ConfirmResponse> {
    return this.operations.confirm();
  }

  async replay(request: ReplayRequest): Promise<ReplayResponse> {
    return this.operations.replay(parseReplayRequest(request, this.accounts));
  }

  async auditLog(query: AuditQuery = {}): Promise<AuditPage> {
    const { after, limit, ...filter } = query;
    return this.operations.auditLog(auditInput(after ?? 0, limit ?? DEFAULT_AUDIT_LIMIT, filter));
  }

  async followAudit(after: number, onRecord: (record: AuditRecordView) => void, filter: AuditFilterQuery = {}): Promise<AuditFollow> {
    return this.operations.followAudit(checkSeq(after), onRecord, auditFilter(filter));
  }

  async getAuditLevel(): Promise<AuditLevelResponse> {
    return this.operations.getAuditLevel();
  }

  async setAuditLevel(level: AuditLevel): Promise<AuditLevelResponse> {
    return this.operations.setAuditLevel(parseAuditLevel(level));
  }

  async getMode(): Promise<ModeResponse> {
    return this.operations.getMode();
  }

  async setMode(mode: EnforcementMode): Promise<ModeResponse> {
    return this.operations.setMode(parseMode(mode));
  }
}
