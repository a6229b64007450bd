/**
 * A global budget for message bytes held in memory by all sessions together. Sessions
 * charge what they buffer and release it when it is staged or committed; a new message
 * is refused (SMTP 452 4.3.1) while the budget is spent, so memory stays bounded however
 * many clients send large messages at once.
 */
export class ByteBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  get exhausted(): boolean {
    return this.used >= this.limit;
  }

  get inUse(): number {
    return this.used;
  }

  charge(bytes: number): void {
    this.used += bytes;
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}
