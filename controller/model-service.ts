/**
 * The model repository's wishes, as the planner keeps them: models pinned on every worker with
 * room (`--preload`, a repository load), models taken out of service (a repository unload: their
 * requests are refused), and those of them still to be unloaded from the workers holding them.
 */
export class ModelService {
  /** Kept loaded on every worker with room, demand or not. */
  readonly pinned = new Set<string>();
  private readonly out = new Set<string>();
  private readonly toUnload = new Set<string>();

  pin(model: string): void {
    this.pinned.add(model);
  }

  /** A repository unload: refuse its requests, and unload it everywhere once it has no demand. */
  takeOut(model: string): void {
    this.pinned.delete(model);
    this.toUnload.add(model);
    this.out.add(model);
  }

  /** A repository load: back in service, and pinned. */
  putBack(model: string): void {
    this.toUnload.delete(model);
    this.out.delete(model);
    this.pinned.add(model);
  }

  isOut(model: string): boolean {
    return this.out.has(model);
  }

  isUnloading(model: string): boolean {
    return this.toUnload.has(model);
  }

  /** The models still to unload (a copy: `unloaded` may be called while iterating). */
  unloading(): string[] {
    return [...this.toUnload];
  }

  unloaded(model: string): void {
    this.toUnload.delete(model);
  }
}
