/**
 * Rendered ENVELOPE, BODY and BODYSTRUCTURE strings by body hash, kept for the process
 * (bounded, oldest out first). Clients fetch the same envelopes again and again (every
 * resync of a folder list); with this a FETCH of them reads no stored structure at all.
 */
import type { MessageStructure } from '../../mail/mime/index.js';
import { renderBodyStructure, renderEnvelope } from './structure.js';

export interface Rendered {
  envelope: string;
  body: string;
  bodystructure: string;
}

const MAX_ENTRIES = 50_000;

export class RenderedStructures {
  private readonly entries = new Map<string, Rendered>();

  get(hash: string): Rendered | undefined {
    return this.entries.get(hash);
  }

  /** Renders and keeps a structure's strings. */
  add(hash: string, structure: MessageStructure): Rendered {
    const rendered = {
      envelope: renderEnvelope(structure.envelope),
      body: renderBodyStructure(structure.root, false),
      bodystructure: renderBodyStructure(structure.root, true),
    };
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(hash, rendered);
    return rendered;
  }
}
