import { request as httpRequest, IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';

export interface StreamUploadRequest {
  url: URL;
  method: 'PUT' | 'POST';
  headers: Record<string, string>;
  body: Readable;
  contentLength: number;
}

export interface StreamUploadAnswer {
  status: number;
  statusText: string;
  text: string;
}

/** The connection failed before the server answered; `code` is the socket error code when there is one. */
export class TransportError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'TransportError';
  }
}

/**
 * Sends `body` as the request body through node:http(s), piping it so an artifact of any size is never
 * held in memory (fetch would need duplex streams and cannot report early answers well). When the server
 * answers before the body is sent (a refusal decided from the headers) that answer wins and the rest of
 * the body is dropped.
 */
export function streamUpload(upload: StreamUploadRequest): Promise<StreamUploadAnswer> {
  const send = upload.url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<StreamUploadAnswer>((resolve, reject) => {
    let settled = false;
    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      upload.body.unpipe();
      upload.body.destroy();
      outcome();
    };
    const request = send(upload.url, {
      method: upload.method,
      headers: { ...upload.headers, 'Content-Length': String(upload.contentLength) },
    });
    request.on('response', (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        finish(() =>
          resolve({
            status: response.statusCode ?? 0,
            statusText: response.statusMessage ?? '',
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        ),
      );
      response.on('error', (error: NodeJS.ErrnoException) =>
        finish(() => reject(new TransportError(`answer interrupted: ${error.message}`, error.code))),
      );
    });
    request.on('error', (error: NodeJS.ErrnoException) =>
      finish(() => reject(new TransportError(error.message, error.code))),
    );
    upload.body.on('error', (error: Error) => {
      request.destroy(error);
      finish(() => reject(error));
    });
    upload.body.pipe(request);
  });
}
