/** SHA-256 of a file's bytes, streamed (checkpoints can be several GB). */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { SslInvError } from '../errors';

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  try {
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 22 })) h.update(chunk as Buffer);
  } catch (e) {
    const code = (e as { code?: string }).code === 'ENOENT' ? 'ERR_FILE_NOT_FOUND' : 'ERR_FILE_READ';
    throw new SslInvError(code, `cannot read (${(e as Error).message})`, { file, cause: e });
  }
  return h.digest('hex');
}
