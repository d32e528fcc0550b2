/**
 * Employee ↔ extension directory of a CRM connector: the CRM's user ids and the engine's
 * operator extensions, read from the CRM (retailCRM: the telephony module's `additionalCodes`;
 * Bitrix24: users' `UF_PHONE_INNER`), refreshed periodically, with entries from the
 * configuration overriding the CRM's (amoCRM has only those). A failed refresh keeps the last
 * good map (logged at warn).
 */
import type { Logger } from '../logging/logger.ts';
import type { ExtensionEntry } from './types.ts';

/** Options of {@link ExtensionDirectory}. */
export interface ExtensionDirectoryOptions {
  /** Read the CRM's map; absent: configuration only. */
  load?: (signal: AbortSignal) => Promise<ExtensionEntry[]>;
  /** Entries from the configuration; they win over the CRM's for their user and extension. */
  overrides: readonly ExtensionEntry[];
  /** How often the CRM's map is read again, ms; 0: only at start. */
  refreshMs: number;
  /** Timeout of one read, ms. */
  timeoutMs: number;
  logger: Logger;
}

/** The directory (see the module comment). */
export class ExtensionDirectory {
  private byUser = new Map<string, string>();
  private byExtension = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private loaded = false;

  constructor(private readonly options: ExtensionDirectoryOptions) {
    this.rebuild([]);
  }

  /** The extension of CRM user `userId`, if known. */
  extensionOf(userId: string): string | undefined {
    return this.byUser.get(userId);
  }

  /** The CRM user id of `extension`, if known. */
  userOf(extension: string): string | undefined {
    return this.byExtension.get(extension);
  }

  /** Every entry, overrides applied, sorted by extension. */
  entries(): ExtensionEntry[] {
    return [...this.byUser.entries()]
      .map(([userId, extension]) => ({ userId, extension }))
      .sort((a, b) => a.extension.localeCompare(b.extension));
  }

  /** Whether a CRM read has succeeded at least once. */
  get fromCrm(): boolean {
    return this.loaded;
  }

  /** Read the CRM's map now. Never throws: a failure keeps the last map and is logged. */
  async refresh(): Promise<void> {
    if (!this.options.load) return;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.options.timeoutMs);
    try {
      const entries = await this.options.load(controller.signal);
      this.rebuild(entries);
      this.loaded = true;
      this.options.logger.debug('CRM extensions refreshed', { entries: this.byUser.size });
    } catch (err) {
      this.options.logger.warn('reading the CRM extensions failed; keeping the last map', { err });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Read now and then every `refreshMs`. */
  start(): void {
    void this.refresh();
    if (this.options.refreshMs > 0 && this.options.load && !this.timer) {
      this.timer = setInterval(() => void this.refresh(), this.options.refreshMs);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private rebuild(fromCrm: readonly ExtensionEntry[]): void {
    const byUser = new Map<string, string>();
    const overriddenExtensions = new Set(this.options.overrides.map((e) => e.extension));
    const overriddenUsers = new Set(this.options.overrides.map((e) => e.userId));
    for (const entry of fromCrm) {
      if (overriddenUsers.has(entry.userId) || overriddenExtensions.has(entry.extension)) continue;
      byUser.set(entry.userId, entry.extension);
    }
    for (const entry of this.options.overrides) byUser.set(entry.userId, entry.extension);
    this.byUser = byUser;
    this.byExtension = new Map([...byUser].map(([user, ext]) => [ext, user]));
  }
}
