/**
 * Hub devices (docs/console.md "Hub devices"): a built-in hub's devices and twins, through the admin
 * API (`/admin/instances/{name}/hubs/{hub}/devices…`). Saving desired properties sends the hub a
 * merge patch under the twin's etag; the hub tells the connected device at once.
 */
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { ErrorBanner } from '../components/error-banner';
import { useAction } from '../components/use-action';
import { editableDesired, mergePatchBetween, parseDesired } from '../fleet/twin';
import { navigate, useRoute } from '../router';
import { useSession } from '../session';

interface Twin {
  deviceId: string;
  etag: string;
  status: string;
  connectionState: string;
  tags?: Record<string, unknown>;
  properties: { desired: Record<string, unknown>; reported: Record<string, unknown> };
}

const PAGE_SIZE = 50;

export function HubDevicesPage() {
  const api = useSession();
  const route = useRoute();
  const builtIn = api.session.instance.linkedHubs.filter((hub) => hub.kind === 'builtin');
  const hub = route.params.get('hub') ?? builtIn[0]?.name ?? '';
  const selected = route.params.get('device') ?? undefined;
  const [twins, setTwins] = useState<Twin[]>();
  const [pages, setPages] = useState<string[]>([]);
  const [next, setNext] = useState<string>();
  const [error, setError] = useState<unknown>();
  const base = `/admin/instances/${encodeURIComponent(api.session.instance.name)}/hubs/${encodeURIComponent(hub)}/devices`;

  const load = useCallback(
    async (continuation?: string) => {
      setError(undefined);
      try {
        const answer = await api.admin<Twin[]>('GET', base, { query: { top: String(PAGE_SIZE), ...(continuation ? { continuation } : {}) } });
        setTwins(answer.body);
        setNext(answer.headers.get('x-ms-continuation') ?? undefined);
      } catch (caught) {
        setTwins([]);
        setError(caught);
      }
    },
    [api, base],
  );

  useEffect(() => {
    setPages([]);
    if (hub) void load();
  }, [hub, load]);

  const choose = (params: { hub?: string; device?: string }) => navigate('/devices', { hub: params.hub ?? hub, device: params.device });

  return (
    <section class="hub-devices">
      <h1>Hub devices</h1>
      {builtIn.length === 0 ? (
        <p>This instance links no built-in hub. Devices of Azure IoT hubs are managed in Azure.</p>
      ) : (
        <>
          <div class="toolbar">
            <label for="hub-choice">Hub</label>
            <select id="hub-choice" value={hub} onChange={(event) => choose({ hub: (event.target as HTMLSelectElement).value })}>
              {builtIn.map((candidate) => (
                <option key={candidate.name} value={candidate.name}>
                  {candidate.name} ({candidate.hostName})
                </option>
              ))}
            </select>
            <button type="button" class="secondary" onClick={() => void load(pages[pages.length - 1])}>
              Refresh
            </button>
          </div>
          <ErrorBanner error={error} onDismiss={() => setError(undefined)} />
          <div class="hub-devices-layout">
            <div>
              {twins === undefined ? (
                <p class="loading">Loading devices…</p>
              ) : twins.length === 0 ? (
                <p>No devices on {hub} yet. Provision some (the Device fleet page runs devices in this tab).</p>
              ) : (
                <div class="table-wrap">
                  <table>
                    <caption class="visually-hidden">Devices of {hub}</caption>
                    <thead>
                      <tr>
                        <th scope="col">Device id</th>
                        <th scope="col">Status</th>
                        <th scope="col">Connection</th>
                        <th scope="col">Desired</th>
                      </tr>
                    </thead>
                    <tbody>
                      {twins.map((twin) => (
                        <tr key={twin.deviceId} aria-selected={twin.deviceId === selected ? 'true' : undefined}>
                          <th scope="row">
                            <a href={`#/devices?hub=${encodeURIComponent(hub)}&device=${encodeURIComponent(twin.deviceId)}`} aria-current={twin.deviceId === selected ? 'true' : undefined}>
                              {twin.deviceId}
                            </a>
                          </th>
                          <td>{twin.status}</td>
                          <td>{twin.connectionState}</td>
                          <td>v{String(twin.properties.desired.$version ?? '')}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              )}
              <div class="toolbar">
                <button
                  type="button"
                  class="secondary"
                  disabled={pages.length === 0}
                  onClick={() => {
                    const previous = pages.slice(0, -1);
                    setPages(previous);
                    void load(previous[previous.length - 1]);
                  }}
                >
                  Previous page
                </button>
                <button
                  type="button"
                  class="secondary"
                  disabled={!next}
                  onClick={() => {
                    if (!next) return;
                    setPages([...pages, next]);
                    void load(next);
                  }}
                >
                  Next page
                </button>
              </div>
            </div>
            {selected ? <TwinEditor key={`${hub}/${selected}`} base={base} deviceId={selected} onSaved={() => void load(pages[pages.length - 1])} /> : null}
          </div>
        </>
      )}
    </section>
  );
}

function TwinEditor({ base, deviceId, onSaved }: { base: string; deviceId: string; onSaved: () => void }) {
  const api = useSession();
  const [twin, setTwin] = useState<Twin>();
  const [text, setText] = useState('');
  const [saved, setSaved] = useState<string>();
  const { busy, error, setError, run } = useAction();
  const path = `${base}/${encodeURIComponent(deviceId)}/twin`;

  const read = useCallback(
    () =>
      run(async () => {
        const { body } = await api.admin<Twin>('GET', path);
        setTwin(body);
        setText(JSON.stringify(editableDesired(body.properties.desired), null, 2));
      }),
    [api, path, run],
  );

  useEffect(() => {
    void read();
  }, [read]);

  const parsed = parseDesired(text);
  const save = (event: Event) => {
    event.preventDefault();
    if (!twin || 'error' in parsed) return;
    const patch = mergePatchBetween(editableDesired(twin.properties.desired), parsed.value);
    if (!patch) return setSaved('Nothing changed.');
    setSaved(undefined);
    void run(async () => {
      try {
        const { body } = await api.admin<Twin>('PATCH', path, { body: { properties: { desired: patch } }, headers: { 'if-match': `"${twin.etag}"` } });
        setTwin(body);
        setText(JSON.stringify(editableDesired(body.properties.desired), null, 2));
        setSaved(`Saved as desired version ${String(body.properties.desired.$version)}; ${body.connectionState === 'Connected' ? 'the device was told at once.' : 'the device reads it when it connects.'}`);
        onSaved();
      } catch (caught) {
        throw caught instanceof ApiError && caught.status === 412 ? new ApiError(412, caught.errorCode, 'The twin changed since it was read: reload it, then edit again.') : caught;
      }
    }, true);
  };

  return (
    <form class="card twin-editor" onSubmit={save} aria-labelledby="twin-title">
      <h2 id="twin-title">Twin of {deviceId}</h2>
      {twin ? (
        <p class="twin-meta">
          <span>{twin.connectionState}</span>
          <span>desired v{String(twin.properties.desired.$version)}</span>
          <span>reported v{String(twin.properties.reported.$version)}</span>
          <span>etag {twin.etag}</span>
        </p>
      ) : null}
      <label for="twin-desired">Desired properties (JSON)</label>
      <textarea
        id="twin-desired"
        class="code"
        spellcheck={false}
        value={text}
        aria-invalid={'error' in parsed ? 'true' : undefined}
        aria-describedby="twin-desired-error"
        onInput={(event) => {
          setText((event.target as HTMLTextAreaElement).value);
          setSaved(undefined);
        }}
      />
      <p id="twin-desired-error" class="field-error" role={'error' in parsed ? 'alert' : undefined}>
        {'error' in parsed ? parsed.error : ''}
      </p>
      <ErrorBanner error={error} onDismiss={() => setError(undefined)} />
      {saved ? (
        <p class="hint" role="status">
          {saved}
        </p>
      ) : null}
      <div class="toolbar">
        <button type="submit" disabled={busy || !twin || 'error' in parsed}>
          {busy ? 'Saving…' : 'Save desired properties'}
        </button>
        <button type="button" class="secondary" onClick={() => void read()}>
          Reload
        </button>
      </div>
      <h3>Reported properties</h3>
      <pre>{twin ? JSON.stringify(editableDesired(twin.properties.reported), null, 2) : '…'}</pre>
    </form>
  );
}
