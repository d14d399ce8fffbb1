import { createHash } from 'node:crypto';
import type { Hasher } from './core/hash.ts';

/** The hasher the core's config hash is computed with: lowercase hex SHA-256 of the UTF-8 input. */
export const sha256Hex: Hasher = (input) => createHash('sha256').update(input).digest('hex');
