/**
 * Device fleet (docs/console.md "Device fleet"): run simulated devices in this tab from an enrollment
 * group (keys derived per device) or an individual enrollment, over MQTT/WS or AMQP/WS to DPS, then
 * MQTT/WS to their hub. Loaded as a chunk of its own with the protocol clients.
 */
import { Component } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { errorText } from '../api';
import { ErrorBanner } from '../components/error-banner';
import { href, useRoute } from '../router';
import { useSession, type SessionApi } from '../session';
import { isKey } from './device-keys';
import type { Transport } from './dps';
import { fleet, summarize, type DeviceView, type Phase } from './fleet';

/** More than this many devices in one tab stops being a simulation of devices and becomes a load test. */
export const MAX_DEVICES = 100;
const TRANSPORTS: { value: Transport; label: string }[] = [
  { value: 'mqtt', label: 'MQTT over WebSocket' },
  { value: 'amqp', label: 'AMQP over WebSocket' },
];

interface EnrollmentChoice {
  kind: 'group' | 'enrollment';
  id: string;
}

interface Form {
  kind: 'group' | 'enrollment';
  id: string;
  key: string;
  count: number;
  prefix: string;
  transport: Transport;
  perMinute: number;
}

function formFromRoute(params: URLSearchParams): Form {
  const group = params.get('group');
  const enrollment = params.get('enrollment');
  const count = Number(params.get('count') ?? 5);
  const perMinute = Number(params.get('rate') ?? 12);
  const transport = params.get('transport') === 'amqp' ? 'amqp' : 'mqtt';
  return {
    kind: enrollment !== null && group === null ? 'enrollment' : 'group',
    id: group ?? enrollment ?? '',
    key: params.get('key') ?? '',
    count: Number.isInteger(count) && count >= 1 ? Math.min(count, MAX_DEVICES) : 5,
    prefix: params.get('prefix') ?? '',
    transport,
    perMinute: Number.isFinite(perMinute) && perMinute >= 0 ? Math.min(perMinute, 600) : 12,
  };
}

/** `POST /{enrollments|enrollmentGroups}/query`: the symmetric-key ones (a browser device has no TPM or certificate). */
async function symmetricKeyChoices(api: SessionApi): Promise<EnrollmentChoice[]> {
  const [groups, enrollments] = await Promise.all([
    api.service<{ enrollmentGroupId: string; attestation?: { type?: string } }[]>('POST', '/enrollmentGroups/query', { body: { query: 'SELECT * FROM enrollmentGroups' }, headers: { 'x-ms-max-item-count': '1000' } }),
    api.service<{ registrationId: string; attestation?: { type?: string } }[]>('POST', '/enrollments/query', { body: { query: 'SELECT * FROM enrollments' }, headers: { 'x-ms-max-item-count': '1000' } }),
  ]);
  return [
    ...groups.body.filter((group) => group.attestation?.type === 'symmetricKey').map((group) => ({ kind: 'group' as const, id: group.enrollmentGroupId })),
    ...enrollments.body.filter((enrollment) => enrollment.attestation?.type === 'symmetricKey').map((enrollment) => ({ kind: 'enrollment' as const, id: enrollment.registrationId })),
  ];
}

/** The primary key, read with `attestationmechanism` (the only read that returns keys). */
async function primaryKey(api: SessionApi, choice: EnrollmentChoice): Promise<string> {
  const path = choice.kind === 'group' ? `/enrollmentGroups/${encodeURIComponent(choice.id)}/attestationmechanism` : `/enrollments/${encodeURIComponent(choice.id)}/attestationmechanism`;
  const { body } = await api.service<{ symmetricKey?: { primaryKey?: string } }>('POST', path);
  const key = body.symmetricKey?.primaryKey;
  if (!key) throw new Error(`The ${choice.kind === 'group' ? 'group' : 'enrollment'} '${choice.id}' has no symmetric key.`);
  return key;
}

export function FleetPage() {
  const api = useSession();
  const route = useRoute();
  const [form, setForm] = useState<Form>(() => formFromRoute(route.params));
  const [choices, setChoices] = useState<EnrollmentChoice[]>();
  const [error, setError] = useState<unknown>();
  const [views, setViews] = useState<DeviceView[]>(() => fleet.views);
  const [shareKey, setShareKey] = useState(false);
  const keyFor = useRef('');

  useEffect(() => fleet.subscribe(setViews), []);

  useEffect(() => {
    symmetricKeyChoices(api).then(setChoices, setError);
  }, [api]);

  // The key of the chosen enrollment is read when it is chosen, unless the link (or the user) gave one.
  useEffect(() => {
    if (!form.id || form.key) return;
    const wanted = `${form.kind}:${form.id}`;
    keyFor.current = wanted;
    primaryKey(api, { kind: form.kind, id: form.id }).then(
      (key) => keyFor.current === wanted && setForm((current) => (current.key ? current : { ...current, key })),
      setError,
    );
  }, [api, form.kind, form.id, form.key]);

  const set = <K extends keyof Form>(name: K, value: Form[K]) => setForm((current) => ({ ...current, [name]: value }));

  const start = (event: Event) => {
    event.preventDefault();
    setError(undefined);
    if (!form.id) return setError(new Error('Choose an enrollment group or an individual enrollment.'));
    if (!isKey(form.key)) return setError(new Error('The symmetric key must be base64 of 16 to 64 bytes.'));
    const count = form.kind === 'enrollment' ? 1 : form.count;
    const prefix = form.prefix || `${form.id}-`;
    const registrationIds = form.kind === 'enrollment' ? [form.id] : Array.from({ length: count }, (_, i) => `${prefix}${i + 1}`.toLowerCase());
    const invalid = registrationIds.find((id) => !/^[a-z0-9._:-]{1,128}$/.test(id));
    if (invalid) return setError(new Error(`'${invalid}' is not a valid registration id (lower-case letters, digits, '-', '.', '_', ':').`));
    if (views.filter((view) => !registrationIds.includes(view.registrationId)).length + registrationIds.length > MAX_DEVICES) {
      return setError(new Error(`At most ${MAX_DEVICES} devices run in one tab; clear some first.`));
    }
    fleet.start({
      source: { kind: form.kind, key: form.key },
      registrationIds,
      transports: [form.transport],
      perMinute: form.perMinute,
      idScope: api.session.instance.idScope,
      url: `wss://${location.host}/$iothub/websocket`,
      hostname: location.hostname,
    });
  };

  const shareLink = useMemo(() => {
    const params: Record<string, string | number | undefined> = {
      [form.kind]: form.id,
      ...(form.kind === 'group' ? { count: form.count, prefix: form.prefix || undefined } : {}),
      transport: form.transport,
      rate: form.perMinute,
      ...(shareKey ? { key: form.key } : {}),
    };
    return `${location.origin}${location.pathname}${href('/fleet', params)}`;
  }, [form, shareKey]);

  const summary = summarize(views);
  const groupChoices = choices?.filter((choice) => choice.kind === form.kind) ?? [];

  return (
    <section class="fleet">
      <h1>Device fleet</h1>
      <p class="hint">
        Simulated devices in this tab, on the same wire as real ones: they register with DPS over WebSocket, then connect to their hub, send
        telemetry and show desired-property changes.
      </p>
      <form class="card fleet-form" onSubmit={start}>
        <fieldset>
          <legend>Enrollment</legend>
          <label class="check">
            <input type="radio" name="kind" checked={form.kind === 'group'} onChange={() => setForm((current) => ({ ...current, kind: 'group', id: '', key: '' }))} />
            Enrollment group (keys derived per device)
          </label>
          <label class="check">
            <input type="radio" name="kind" checked={form.kind === 'enrollment'} onChange={() => setForm((current) => ({ ...current, kind: 'enrollment', id: '', key: '' }))} />
            Individual enrollment (one device)
          </label>
        </fieldset>
        <div class="fleet-fields">
          <div>
            <label for="fleet-id">{form.kind === 'group' ? 'Group' : 'Enrollment'}</label>
            <select id="fleet-id" value={form.id} onChange={(event) => setForm((current) => ({ ...current, id: (event.target as HTMLSelectElement).value, key: '' }))}>
              <option value="">{choices ? (groupChoices.length ? 'Choose…' : 'None with a symmetric key') : 'Loading…'}</option>
              {form.id && !groupChoices.some((choice) => choice.id === form.id) ? <option value={form.id}>{form.id}</option> : null}
              {groupChoices.map((choice) => (
                <option key={choice.id} value={choice.id}>
                  {choice.id}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for="fleet-key">{form.kind === 'group' ? 'Group key' : 'Device key'}</label>
            <input id="fleet-key" type="password" autocomplete="off" spellcheck={false} value={form.key} onInput={(event) => set('key', (event.target as HTMLInputElement).value.trim())} />
          </div>
          {form.kind === 'group' ? (
            <>
              <div>
                <label for="fleet-count">Devices</label>
                <input id="fleet-count" type="number" min={1} max={MAX_DEVICES} required value={form.count} onInput={(event) => set('count', Number((event.target as HTMLInputElement).value))} />
              </div>
              <div>
                <label for="fleet-prefix">Registration id prefix</label>
                <input id="fleet-prefix" pattern="[a-z0-9._:\-]*" placeholder={form.id ? `${form.id}-` : 'sim-'} value={form.prefix} onInput={(event) => set('prefix', (event.target as HTMLInputElement).value)} />
              </div>
            </>
          ) : null}
          <div>
            <label for="fleet-transport">Transport to DPS</label>
            <select id="fleet-transport" value={form.transport} onChange={(event) => set('transport', (event.target as HTMLSelectElement).value as Transport)}>
              {TRANSPORTS.map((transport) => (
                <option key={transport.value} value={transport.value}>
                  {transport.label}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for="fleet-rate">Telemetry per device (messages a minute)</label>
            <input id="fleet-rate" type="number" min={0} max={600} required value={form.perMinute} onInput={(event) => set('perMinute', Number((event.target as HTMLInputElement).value))} />
          </div>
        </div>
        <ErrorBanner error={error} onDismiss={() => setError(undefined)} />
        <div class="toolbar">
          <button type="submit">Start devices</button>
          <button type="button" class="secondary" onClick={() => fleet.stopAll()} disabled={summary.total === 0}>
            Stop all
          </button>
          <button type="button" class="secondary" onClick={() => fleet.clear()} disabled={summary.total === 0}>
            Clear stopped
          </button>
        </div>
        <details class="fleet-share">
          <summary>Share these devices</summary>
          <label for="fleet-link">Link to this page with these settings</label>
          <input id="fleet-link" readOnly value={shareLink} onFocus={(event) => (event.target as HTMLInputElement).select()} />
          <label class="check">
            <input type="checkbox" checked={shareKey} onChange={(event) => setShareKey((event.target as HTMLInputElement).checked)} />
            Include the key in the link (anyone with the link can then register these devices)
          </label>
          <button type="button" class="secondary" onClick={() => void navigator.clipboard?.writeText(shareLink).catch((caught: unknown) => setError(new Error(errorText(caught))))}>
            Copy link
          </button>
        </details>
      </form>
      <p class="fleet-summary" role="status" aria-live="polite">
        {summary.total === 0
          ? 'No devices running.'
          : `${summary.total} devices: ${summary.assigned} assigned, ${summary.failed} failed, ${summary.connected} connected, ${summary.sent} messages sent`}
      </p>
      {views.length ? <DeviceTable views={views} onStop={stopDevice} hubs={api.session.instance.linkedHubs} /> : null}
    </section>
  );
}

const stopDevice = (registrationId: string) => fleet.stop(registrationId);

const PHASE_TEXT: Record<Phase, string> = {
  waiting: 'waiting',
  registering: 'registering',
  assigned: 'assigned',
  connected: 'connected',
  failed: 'failed',
  stopped: 'stopped',
};

function DeviceTable({ views, onStop, hubs }: { views: DeviceView[]; onStop: (registrationId: string) => void; hubs: { name: string; hostName: string }[] }) {
  const hubName = (hostName: string | undefined) => hubs.find((hub) => hub.hostName === hostName)?.name;
  return (
    <div class="table-wrap">
      <table class="fleet-table">
        <caption class="visually-hidden">Simulated devices</caption>
        <thead>
          <tr>
            <th scope="col">Registration id</th>
            <th scope="col">Status</th>
            <th scope="col">Last step</th>
            <th scope="col">Hub</th>
            <th scope="col">Sent</th>
            <th scope="col">Desired properties</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {views.map((view) => (
            <DeviceRow key={view.registrationId} view={view} hubName={hubName(view.assignedHub)} onStop={onStop} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

interface RowProps {
  view: DeviceView;
  hubName: string | undefined;
  onStop: (registrationId: string) => void;
}

/**
 * One device's row. Views are replaced, never mutated, on each change: a row whose device did not
 * change skips rendering, so a telemetry tick of one device re-renders one row, not the table.
 */
class DeviceRow extends Component<RowProps> {
  override shouldComponentUpdate(next: RowProps): boolean {
    return next.view !== this.props.view || next.hubName !== this.props.hubName;
  }

  override render({ view, hubName, onStop }: RowProps) {
    return (
      <tr data-registration-id={view.registrationId}>
        <th scope="row">
          {view.registrationId}
          <span class="fleet-transport">{view.transport === 'mqtt' ? 'MQTT/WS' : 'AMQP/WS'}</span>
        </th>
        <td>
          <span class={`chip chip-${view.phase}`}>{PHASE_TEXT[view.phase]}</span>
        </td>
        <td class="fleet-step">{view.step}</td>
        <td>{view.assignedHub ?? '—'}</td>
        <td>{view.sent}</td>
        <td class="fleet-desired">
          {view.desired ? (
            <>
              <code>{JSON.stringify(view.desired)}</code>
              {view.desiredVersion !== undefined ? <span class="hint"> v{view.desiredVersion}</span> : null}
              {hubName && view.deviceId ? (
                <a href={href('/devices', { hub: hubName, device: view.deviceId })} aria-label={`Edit the twin of ${view.deviceId}`}>
                  edit
                </a>
              ) : null}
            </>
          ) : (
            '—'
          )}
        </td>
        <td>
          <button type="button" class="link" onClick={() => onStop(view.registrationId)} disabled={view.phase === 'stopped' || view.phase === 'failed'} aria-label={`Stop ${view.registrationId}`}>
            Stop
          </button>
        </td>
      </tr>
    );
  }
}
