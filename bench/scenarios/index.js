// The scenarios of bench/fs.js, in the order each round measures them (and
// the report lists them and their goals).
'use strict';

module.exports = [require('./open-read-close'), require('./parallel-readers'), require('./sequential-read'), require('./metadata-walk')];
