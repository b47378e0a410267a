import type { Request, Response } from 'express';
import { DomainError, DomainErrorCode } from './domain-error';

/**
 * Reads a request body of at most `maxBytes`. A declared Content-Length over the limit is refused before a
 * byte is read; a chunked body is cut off at the limit. Either way the connection is marked to close, so the
 * rest of an oversized body is never read or buffered.
 */
export async function readBody(request: Request, response: Response, maxBytes: number, what: string): Promise<Buffer> {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw tooLarge(response, maxBytes, what);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of request as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) throw tooLarge(response, maxBytes, what);
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof DomainError) throw error;
    throw new DomainError(DomainErrorCode.Invalid, `the request body was interrupted: ${(error as Error).message}`);
  }
  return Buffer.concat(chunks);
}

function tooLarge(response: Response, maxBytes: number, what: string): DomainError {
  response.setHeader('Connection', 'close');
  return new DomainError(DomainErrorCode.PayloadTooLarge, `${what} is larger than ${maxBytes} bytes`, { maxBytes });
}

/** Deeper JSON than any DTO of the API: refused before validation walks it recursively. */
export const MAX_JSON_DEPTH = 32;

/**
 * Why a parsed JSON value cannot be taken, or null: a NUL character in any string or key (PostgreSQL text
 * refuses it) or nesting deeper than MAX_JSON_DEPTH. Never recurses past that depth.
 */
export function jsonProblem(value: unknown, depth = 0): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? 'strings must not contain NUL (U+0000)' : null;
  if (typeof value !== 'object' || value === null) return null;
  if (depth >= MAX_JSON_DEPTH) return `nested deeper than ${MAX_JSON_DEPTH} levels`;
  const entries = Array.isArray(value) ? value.map((item) => ['', item] as const) : Object.entries(value);
  for (const [key, item] of entries) {
    if (key.includes('\u0000')) return 'keys must not contain NUL (U+0000)';
    const problem = jsonProblem(item, depth + 1);
    if (problem) return problem;
  }
  return null;
}

/** JSON.parse that answers 400 for bad JSON, NUL characters and excessive nesting. */
export function parseJsonBody(bytes: Buffer): unknown {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new DomainError(DomainErrorCode.Invalid, `the request body is not valid JSON: ${(error as Error).message}`);
  }
  const problem = jsonProblem(value);
  if (problem) throw new DomainError(DomainErrorCode.Invalid, `the request body is refused: ${problem}`);
  return value;
}
