import { DistillError, type Balancer } from '@distill/base';

/** What one balancer call computed (for logs, plots and parity checks). */
export interface BalancerTrace {
  weights: number[];
  magnitudeAdjustment: number[];
  adjustedLosses: number[];
  lossRates?: number[];
}

function softmax(x: number[], temperature: number): number[] {
  const m = Math.max(...x.map((v) => v / temperature));
  const e = x.map((v) => Math.exp(v / temperature - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

function checkLosses(losses: number[], name: string): void {
  if (losses.length === 0) throw new DistillError(`${name}: no losses to weigh.`);
  const bad = losses.findIndex((l) => !Number.isFinite(l));
  if (bad >= 0)
    throw new DistillError(`${name}: loss #${bad} is ${losses[bad]}; the balancer needs finite loss values.`);
}

export interface DsmdOfficialConfig {
  /** Scale of the weights (official default 10). */
  k: number;
  temperature: number;
  eps: number;
}

/**
 * The official DSMD balancer (chrisx599/DSMD module/balancer.py), every call = one step:
 *   a_m = max(L)/(L_m+eps); first call w = 1; later r_m = (L_m a_m)(t)/((L_m a_m)(t-1)+eps),
 *   w_m = k softmax(r/T)_m a_m; state = previous adjusted losses.
 */
export class DsmdOfficialBalancer implements Balancer {
  readonly name = 'dsmd-official';
  private prev: number[] | null = null;
  lastTrace?: BalancerTrace;
  constructor(readonly cfg: DsmdOfficialConfig = { k: 10, temperature: 1, eps: 1e-8 }) {}

  weights(losses: number[]): number[] {
    checkLosses(losses, this.name);
    const max = Math.max(...losses);
    const a = losses.map((l) => max / (l + this.cfg.eps));
    const adjusted = losses.map((l, m) => l * a[m]);
    if (this.prev === null || this.prev.length !== losses.length) {
      this.prev = adjusted;
      this.lastTrace = { weights: losses.map(() => 1), magnitudeAdjustment: a, adjustedLosses: adjusted };
      return this.lastTrace.weights;
    }
    const r = adjusted.map((v, m) => v / (this.prev![m] + this.cfg.eps));
    const sm = softmax(r, this.cfg.temperature);
    const w = sm.map((p, m) => this.cfg.k * p * a[m]);
    this.prev = adjusted;
    this.lastTrace = { weights: w, magnitudeAdjustment: a, adjustedLosses: adjusted, lossRates: r };
    return w;
  }

  state(): unknown {
    return { prev: this.prev };
  }

  load(s: unknown): void {
    const p = (s as { prev?: number[] | null } | null)?.prev;
    this.prev = p ? [...p] : null;
  }
}

export interface DsmdPaperConfig {
  temperature: number;
}

/**
 * The DSMD paper's balancer (eqs. 15-17, spec section E): magnitude scaling a_m(t) = max_j L_j(t)/L_m(t)
 * and DWA rates r_m(t) = L_m(t-1)/L_m(t-2) on unscaled values, w_m = M softmax(r/T)_m (1 while fewer
 * than two earlier steps exist). Returns the effective multipliers w_m a_m of each L_m.
 */
export class DsmdPaperBalancer implements Balancer {
  readonly name = 'dsmd-paper';
  private history: number[][] = [];
  lastTrace?: BalancerTrace;
  constructor(readonly cfg: DsmdPaperConfig = { temperature: 1 }) {}

  weights(losses: number[]): number[] {
    checkLosses(losses, this.name);
    const M = losses.length;
    const max = Math.max(...losses);
    const a = losses.map((l) => max / Math.max(l, 1e-12));
    let w = losses.map(() => 1);
    let r: number[] | undefined;
    if (this.history.length >= 2 && this.history[0].length === M) {
      const [l2, l1] = this.history; // L(t-2), L(t-1)
      r = l1.map((v, m) => v / Math.max(l2[m], 1e-12));
      w = softmax(r, this.cfg.temperature).map((p) => M * p);
    }
    this.history = [...this.history, [...losses]].slice(-2);
    const eff = w.map((v, m) => v * a[m]);
    this.lastTrace = {
      weights: eff,
      magnitudeAdjustment: a,
      adjustedLosses: losses.map((l, m) => l * a[m]),
      lossRates: r,
    };
    return eff;
  }

  state(): unknown {
    return { history: this.history };
  }

  load(s: unknown): void {
    const h = (s as { history?: number[][] } | null)?.history;
    this.history = h ? h.map((x) => [...x]) : [];
  }
}

/** Fixed weights (default all 1). */
export class StaticBalancer implements Balancer {
  readonly name = 'static';
  constructor(readonly fixed?: number[]) {}
  weights(losses: number[]): number[] {
    checkLosses(losses, this.name);
    if (this.fixed && this.fixed.length !== losses.length) {
      throw new DistillError(`static balancer: ${this.fixed.length} weights configured for ${losses.length} losses.`);
    }
    return this.fixed ? [...this.fixed] : losses.map(() => 1);
  }
  state(): unknown {
    return null;
  }
  load(): void {}
}

/**
 * Static weights that normalise the loss sizes: at the first step w_m = (k/M) max_j L_j / L_m (the
 * official balancer's magnitude adjustment, at its scale k = 10 with an even softmax), then frozen for the
 * whole run (kept in the checkpoint's state). Table 5's control: it normalises loss sizes as the dynamic
 * balancers do, without their step-by-step weighting.
 */
export class StaticNormalisedBalancer implements Balancer {
  readonly name = 'static-normalised';
  private fixed: number[] | null = null;
  constructor(readonly k = 10) {}
  weights(losses: number[]): number[] {
    checkLosses(losses, this.name);
    if (!this.fixed || this.fixed.length !== losses.length) {
      const max = Math.max(...losses);
      if (!(max > 0))
        throw new DistillError(`${this.name}: the first step's losses are all 0; there is no size to normalise.`);
      this.fixed = losses.map((l) => (this.k / losses.length) * (max / Math.max(l, 1e-12)));
    }
    return [...this.fixed];
  }
  state(): unknown {
    return { fixed: this.fixed };
  }
  load(s: unknown): void {
    const f = (s as { fixed?: number[] | null } | null)?.fixed;
    this.fixed = f ? [...f] : null;
  }
}

export type BalancerConfig = Partial<DsmdOfficialConfig & DsmdPaperConfig> & { weights?: number[] };

/** A balancer's registry entry: its name, its description and how it is made from the config (definition and registration together). */
export interface BalancerEntry {
  name: string;
  description: string;
  create(cfg: BalancerConfig): Balancer;
}

/** The built-in balancers: what `register` adds to the balancer registry, and where names and descriptions come from. */
export const BALANCERS: readonly BalancerEntry[] = [
  {
    name: 'dsmd-paper',
    description: 'DSMD paper: magnitude scaling x DWA rates (L(t-1)/L(t-2)), M softmax over T',
    create: (cfg) => new DsmdPaperBalancer({ temperature: cfg.temperature ?? 1 }),
  },
  {
    name: 'dsmd-official',
    description: 'DSMD official code: a_m = max/L_m, w = 10 softmax(adjusted(t)/adjusted(t-1)) a_m',
    create: (cfg) =>
      new DsmdOfficialBalancer({ k: cfg.k ?? 10, temperature: cfg.temperature ?? 1, eps: cfg.eps ?? 1e-8 }),
  },
  {
    name: 'static',
    description: 'fixed weights from config (default 1 each)',
    create: (cfg) => new StaticBalancer(cfg.weights),
  },
  {
    name: 'static-normalised',
    description:
      "fixed weights that normalise the loss sizes: (10/M) max(L)/L_m at the first step, then frozen (Table 5's control)",
    create: (cfg) => new StaticNormalisedBalancer(cfg.k ?? 10),
  },
];

/** A built-in balancer by name (the entries of `BALANCERS`; the registry adds plugins' balancers). */
export function createBalancer(name: string, cfg: BalancerConfig = {}): Balancer {
  const entry = BALANCERS.find((b) => b.name === name);
  if (!entry)
    throw new DistillError(`Unknown balancer '${name}'. Available: ${BALANCERS.map((b) => b.name).join(', ')}.`, 2);
  return entry.create(cfg);
}
