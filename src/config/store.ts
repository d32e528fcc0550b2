/** Configuration of the engine's state: the data directory and the store (SQLite or PostgreSQL). */
import { z } from 'zod';
import { bool } from './fields.ts';

/** DATA_DIR, DATABASE_URL, DATABASE_SCHEMA, SQLITE_SYNCHRONOUS, JOURNAL_LOG. */
export const storeFields = {
  DATA_DIR: z
    .string()
    .min(1)
    .default('./data')
    .describe(
      'Directory of the engine state: the SQLite store (ari-crm.sqlite) and recordings. Back it up (docs/operations.md).',
    ),
  DATABASE_URL: z
    .string()
    .regex(/^(sqlite:|postgres(ql)?:\/\/)/i, 'expected sqlite:<path> or postgres://…')
    .optional()
    .describe(
      'The store: sqlite:<path> or postgres://user:pass@host:5432/db. Unset: sqlite:<DATA_DIR>/ari-crm.sqlite. Never logged with its password.',
    ),
  DATABASE_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a lower-case PostgreSQL identifier')
    .optional()
    .describe(
      "PostgreSQL only: the schema holding the engine's tables, created at start-up (unset: public). Each engine sharing one PostgreSQL database needs its own: at start an engine adopts every unfinished call and resends every pending event in its tables.",
    ),
  SQLITE_SYNCHRONOUS: z
    .enum(['normal', 'full'])
    .default('normal')
    .describe(
      'SQLite durability (WAL mode): normal = a committed change survives a crash of the engine (not of the OS or a power cut) and commits are fast; full = it also survives a power cut, each commit waits for the disk.',
    ),
  JOURNAL_LOG: bool
    .default(true)
    .describe(
      'SQLite with SQLITE_SYNCHRONOUS=normal only: append the writes a client waits for (a new click-to-call before its 202, a call.ringing before its webhook) to <database>.journal-log with one synchronous write, instead of waiting for the SQLite commit; replayed at start-up. As durable as normal (survives an engine crash, not an OS crash). false: they wait for the commit (true/false).',
    ),
};
