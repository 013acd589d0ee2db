#!/usr/bin/env node
// `npx deferred-cpm`: the operator CLI (functions/cli/main.ts), run from its TypeScript source
// through tsx in this same process, so signals and exit codes are the CLI's own.
import { register } from 'tsx/esm/api';

register();
await import('../functions/cli/main.ts');
