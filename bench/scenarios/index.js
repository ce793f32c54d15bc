// The scenarios of bench/fs.js, in the order each round measures them (and
// the report lists them and their goals). Each is a module of this shape:
//
//   name      what --only calls it;
//   metrics   { key: { label, better: 'lower' | 'higher', unit } }, in the
//             order the report lists them;
//   goals     [{ n, metric, pin, of?, vs, op: '<=' | '>=', target }]: the
//             ratio of variant `of`'s median (aclfs when absent) to vs's
//             median in the same CPU mode (pin) that the metric must meet;
//             not to be tuned to the results;
//   measure(ctx)  one round in one CPU mode: measures every variant of
//             ctx.order in that order and hands each value to
//             ctx.record(variant, metric, value) (see lib/rounds.js for ctx).
'use strict';

module.exports = [require('./open-read-close'), require('./parallel-readers'), require('./sequential-read'), require('./metadata-walk')];
