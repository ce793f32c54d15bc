// The public surface of src/rules (fs/ and admin/ import from here).

export * from './types';
export * from './access';
export { decide, describeDecision, findGoverningRule, grantedBits, type GoverningRule, type Grant } from './decide';
export { normalizePath, isNormalPath, parentPath, isAtOrBelow } from './path';
export * from './validate';
export * from './store';
export * from './cache';
export * from './names';
export * from './ruleFile';
