/**
 * The simulated devices of one run: each registers (./dps), then lives on its hub (./hub-session)
 * sending telemetry on a timer until stopped. The page renders snapshots; changes are coalesced so
 * that 25+ devices stepping at once cost one render per frame, not one per event.
 */
import { register, RegistrationError, type Transport } from './dps';
import { deriveDeviceKey } from './device-keys';
import { SIGN_OUT_EVENT } from '../session';
import { HubSession } from './hub-session';

export type Phase = 'waiting' | 'registering' | 'assigned' | 'connected' | 'failed' | 'stopped';

export interface DeviceView {
  registrationId: string;
  transport: Transport;
  phase: Phase;
  /** The latest step in words (a 202 and its poll, an error with its code…). */
  step: string;
  assignedHub?: string;
  deviceId?: string;
  sent: number;
  /** The desired properties as last received, without `$version`; and that version. */
  desired?: Record<string, unknown>;
  desiredVersion?: number;
  /** Desired-property updates received after the first twin read. */
  patches: number;
}

export interface FleetSource {
  /** `group`: keys derived per device from the group key; `enrollment`: one device with its own key. */
  kind: 'group' | 'enrollment';
  key: string;
}

export interface FleetPlan {
  source: FleetSource;
  registrationIds: string[];
  /** The transport of each device, by index (the last one for the rest). */
  transports: Transport[];
  /** Telemetry messages per device per minute (0: none). */
  perMinute: number;
  idScope: string;
  url: string;
  hostname: string;
}

interface Running {
  view: DeviceView;
  abort: AbortController;
  session?: HubSession;
  timer?: ReturnType<typeof setInterval>;
}

export class Fleet {
  private readonly devices: Running[] = [];
  private readonly listeners = new Set<(views: DeviceView[]) => void>();
  private scheduled = false;

  /** Calls `listener` with the views after changes (coalesced); returns the unsubscribe. */
  subscribe(listener: (views: DeviceView[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get views(): DeviceView[] {
    return this.devices.map((device) => device.view);
  }

  /** Adds the plan's devices to the run (a device of the same id already there is stopped and replaced). */
  start(plan: FleetPlan): void {
    for (const registrationId of plan.registrationIds) {
      const at = this.devices.findIndex((device) => device.view.registrationId === registrationId);
      if (at < 0) continue;
      this.halt(this.devices[at]!);
      this.devices.splice(at, 1);
    }
    plan.registrationIds.forEach((registrationId, index) => {
      const transport = plan.transports[index] ?? plan.transports[0] ?? 'mqtt';
      const running: Running = { view: { registrationId, transport, phase: 'waiting', step: 'waiting', sent: 0, patches: 0 }, abort: new AbortController() };
      this.devices.push(running);
      void this.run(running, plan);
    });
    this.changed();
  }

  stop(registrationId: string): void {
    const device = this.devices.find((candidate) => candidate.view.registrationId === registrationId);
    if (device) this.halt(device);
  }

  /** Forgets the devices that are stopped or failed. */
  clear(): void {
    const live = this.devices.filter((device) => device.view.phase !== 'stopped' && device.view.phase !== 'failed');
    this.devices.splice(0, this.devices.length, ...live);
    this.changed();
  }

  stopAll(): void {
    for (const device of this.devices) this.halt(device);
  }

  private halt(device: Running): void {
    device.abort.abort();
    clearInterval(device.timer);
    device.session?.close();
    device.session = undefined;
    if (device.view.phase !== 'failed' && device.view.phase !== 'stopped') this.update(device, { phase: 'stopped', step: 'stopped' });
  }

  private async run(device: Running, plan: FleetPlan): Promise<void> {
    const { registrationId, transport } = device.view;
    const signal = device.abort.signal;
    try {
      const key = plan.source.kind === 'group' ? await deriveDeviceKey(plan.source.key, registrationId) : plan.source.key;
      this.update(device, { phase: 'registering' });
      const assignment = await register({
        url: plan.url,
        hostname: plan.hostname,
        idScope: plan.idScope,
        registrationId,
        key,
        transport,
        signal,
        onStep: (step) => !signal.aborted && this.update(device, { step }),
      });
      if (signal.aborted) return;
      this.update(device, { phase: 'assigned', step: `assigned to ${assignment.assignedHub}`, assignedHub: assignment.assignedHub, deviceId: assignment.deviceId });
      this.update(device, { step: 'connecting to the hub over MQTT/WS' });
      const session = await HubSession.open({
        url: plan.url,
        hubHost: assignment.assignedHub,
        deviceId: assignment.deviceId,
        key,
        onDesired: (desired, kind) => {
          const { $version, ...properties } = desired;
          const version = typeof $version === 'number' ? $version : device.view.desiredVersion;
          // A patch carries only what changed: merge it (null deletes), as the device SDK's twin does.
          const merged = kind === 'twin' ? properties : mergePatch(device.view.desired ?? {}, properties);
          this.update(device, { desired: merged, desiredVersion: version, patches: device.view.patches + (kind === 'patch' ? 1 : 0), ...(kind === 'patch' ? { step: `desired properties v${String(version)} received` } : {}) });
        },
        onClose: (reason) => {
          clearInterval(device.timer);
          if (!signal.aborted) this.update(device, { phase: 'failed', step: `hub connection closed (${reason})` });
        },
      });
      if (signal.aborted) {
        session.close();
        return;
      }
      device.session = session;
      this.update(device, { phase: 'connected', step: 'connected to the hub' });
      const send = () => {
        session.sendTelemetry({ registrationId, sequence: session.messagesSent + 1, temperature: 20 + Math.round(Math.random() * 100) / 10, at: new Date().toISOString() }).then(
          () => this.update(device, { sent: session.messagesSent }),
          (error: Error) => !signal.aborted && this.update(device, { step: `telemetry not acknowledged: ${error.message}` }),
        );
      };
      if (plan.perMinute > 0) {
        send();
        device.timer = setInterval(send, 60_000 / plan.perMinute);
      }
    } catch (error) {
      if (signal.aborted) return;
      this.update(device, { phase: 'failed', step: error instanceof RegistrationError ? error.describe() : (error as Error).message });
    }
  }

  private update(device: Running, change: Partial<DeviceView>): void {
    device.view = { ...device.view, ...change };
    this.changed();
  }

  private changed(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // One render for every change within a frame (timers still run in a background tab).
    setTimeout(() => {
      this.scheduled = false;
      const views = this.views;
      for (const listener of this.listeners) listener(views);
    }, 50);
  }
}

/**
 * The tab's one fleet: devices keep running while the operator visits other pages (say, Hub devices
 * to change a twin) and are shown again on return. Stop all ends them.
 */
export const fleet = new Fleet();

// Signing out ends the devices: their keys came with the session.
addEventListener(SIGN_OUT_EVENT, () => fleet.stopAll());

function mergePatch(target: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...target };
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) delete out[name];
    else if (typeof value === 'object' && !Array.isArray(value) && typeof out[name] === 'object' && out[name] !== null && !Array.isArray(out[name])) {
      out[name] = mergePatch(out[name] as Record<string, unknown>, value as Record<string, unknown>);
    } else out[name] = value;
  }
  return out;
}

export interface FleetSummary {
  total: number;
  assigned: number;
  failed: number;
  connected: number;
  sent: number;
}

export function summarize(views: DeviceView[]): FleetSummary {
  const summary = { total: views.length, assigned: 0, failed: 0, connected: 0, sent: 0 };
  for (const view of views) {
    if (view.assignedHub) summary.assigned += 1;
    if (view.phase === 'failed') summary.failed += 1;
    if (view.phase === 'connected') summary.connected += 1;
    summary.sent += view.sent;
  }
  return summary;
}
