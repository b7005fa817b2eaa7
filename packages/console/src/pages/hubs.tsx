import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ASSIGNMENTS, totalsBy, type MetricsSnapshot } from '../charts/metrics';
import { ConfirmRemoval, NAME_PATTERN, NAME_TITLE } from '../components/admin-list';
import { ErrorBanner } from '../components/error-banner';
import { ListTable } from '../components/list-table';
import { useAction } from '../components/use-action';
import { useFocusFirstField } from '../ops/focus';
import { useSession, type LinkedHubView } from '../session';

/** A linked hub as `GET /admin/instances/{name}/hubs` shows it. */
type Hub = LinkedHubView & { builtin?: { port?: number; hostName?: string } };

interface Draft {
  /** Set when editing an existing link (its name cannot change). */
  editing?: Hub;
  name: string;
  kind: 'builtin' | 'connectionString';
  connectionString: string;
  allocationWeight: string;
  applyAllocationPolicy: boolean;
  location: string;
}

const COLUMNS = ['Name', 'Host name', 'Kind', 'Weight', 'Allocation policy', 'Location', 'Assigned'];

const EMPTY: Draft = { name: '', kind: 'builtin', connectionString: '', allocationWeight: '1', applyAllocationPolicy: true, location: '' };

/**
 * Linked hubs of the current instance (admin API `/admin/instances/{name}/hubs`): link a built-in
 * hub or an Azure IoT Hub by connection string, change weight, policy and location, unlink. Each
 * change applies to the next registration; the console's instance list is read again after it.
 */
export function HubsPage() {
  const api = useSession();
  const instance = api.session.instance.name;
  const base = `/admin/instances/${encodeURIComponent(instance)}/hubs`;
  const [hubs, setHubs] = useState<Hub[]>();
  const [assigned, setAssigned] = useState<Map<string, number>>();
  const [draft, setDraft] = useState<Draft>();
  const [unlinking, setUnlinking] = useState<Hub>();
  const [notice, setNotice] = useState('');
  const { busy, error, setError, run, submit } = useAction();
  // The session object changes after every refresh(); reads go through the latest one.
  const apiRef = useRef(api);
  apiRef.current = api;

  const load = useCallback(
    () =>
      run(async () => {
        const [list, metrics] = await Promise.all([
          apiRef.current.admin<Hub[]>('GET', base),
          apiRef.current.admin<MetricsSnapshot>('GET', `/admin/instances/${encodeURIComponent(instance)}/metrics`).catch(() => undefined),
        ]);
        setHubs(list.body);
        setAssigned(metrics ? totalsBy(metrics.body, ASSIGNMENTS, 'hub') : undefined);
      }),
    [base, instance, run],
  );

  useEffect(() => {
    void load();
  }, [load]);

  const save = submit(async () => {
    if (!draft) return;
    const name = draft.editing?.name ?? draft.name.trim();
    const body: Record<string, unknown> = {
      allocationWeight: Number(draft.allocationWeight),
      applyAllocationPolicy: draft.applyAllocationPolicy,
      ...(draft.location.trim() ? { location: draft.location.trim() } : {}),
    };
    if (draft.kind === 'connectionString') body.connectionString = draft.connectionString.trim();
    else body.builtin = draft.editing?.builtin ?? true;
    const { status } = await api.admin<Hub>('PUT', `${base}/${encodeURIComponent(name)}`, { body });
    setNotice(status === 201 ? `Linked ${name}.` : `Saved ${name}.`);
    setDraft(undefined);
    await api.refresh();
    await load();
  });

  const unlink = (hub: Hub) =>
    run(async () => {
      await api.admin('DELETE', `${base}/${encodeURIComponent(hub.name)}`);
      setNotice(`Unlinked ${hub.name}.`);
      await api.refresh();
      await load();
    });

  const edit = (hub: Hub) =>
    setDraft({
      editing: hub,
      name: hub.name,
      kind: hub.kind,
      connectionString: hub.kind === 'connectionString' ? (hub.connectionString ?? '') : '',
      allocationWeight: String(hub.allocationWeight ?? 1),
      applyAllocationPolicy: hub.applyAllocationPolicy !== false,
      location: hub.location ?? '',
    });

  return (
    <section class="hubs">
      <h1>Linked hubs</h1>
      <p class="hint">
        The IoT hubs that instance <strong>{instance}</strong> assigns devices to. Allocation weighs the hubs that apply the allocation policy;
        a change applies to the next registration.
      </p>
      <div class="toolbar">
        <button type="button" onClick={() => setDraft({ ...EMPTY })} disabled={draft !== undefined && !draft.editing}>
          Link a hub
        </button>
        <span role="status" class="hint">
          {notice}
        </span>
      </div>
      <ErrorBanner error={error} onDismiss={() => setError(undefined)} />
      {draft ? <HubForm key={draft.editing?.name ?? ''} draft={draft} setDraft={setDraft} busy={busy} onSubmit={save} /> : null}
      {hubs === undefined ? (
        <p class="loading">Loading the hubs…</p>
      ) : hubs.length === 0 ? (
        <p>No hub is linked: devices of this instance cannot be assigned until one is.</p>
      ) : (
        <ListTable caption={`Linked hubs of ${instance}`} columns={COLUMNS}>
          {hubs.map((hub) => (
            <tr key={hub.name} data-hub={hub.name}>
              <th scope="row">{hub.name}</th>
              <td>
                <code>{hub.hostName || '—'}</code>
                {hub.kind === 'builtin' && hub.listening === false ? <span class="bad"> not listening</span> : null}
              </td>
              <td>{hub.kind === 'builtin' ? 'Built-in' : 'Azure IoT Hub'}</td>
              <td>{hub.allocationWeight ?? 1}</td>
              <td>{hub.applyAllocationPolicy === false ? 'not applied' : 'applied'}</td>
              <td>{hub.location ?? '—'}</td>
              <td title="Devices this node assigned to the hub since it started">{assigned?.get(hub.name) ?? 0}</td>
              <td class="actions">
                <button type="button" class="link" onClick={() => edit(hub)} aria-label={`Edit ${hub.name}`}>
                  Edit
                </button>
                <button type="button" class="link danger-text" onClick={() => setUnlinking(hub)} aria-label={`Unlink ${hub.name}`}>
                  Unlink
                </button>
              </td>
            </tr>
          ))}
        </ListTable>
      )}
      <ConfirmRemoval item={unlinking} verb="Unlink" onConfirm={(hub) => void unlink(hub)} onClose={() => setUnlinking(undefined)}>
        <p>
          New devices will no longer be assigned to <strong>{unlinking?.name}</strong>. Devices already there stay registered on it
          {unlinking?.kind === 'builtin' ? ', and a built-in hub stops listening' : ''}.
        </p>
      </ConfirmRemoval>
    </section>
  );
}

function HubForm({ draft, setDraft, busy, onSubmit }: { draft: Draft; setDraft: (draft: Draft | undefined) => void; busy: boolean; onSubmit: (event: Event) => void }) {
  const set = (fields: Partial<Draft>) => setDraft({ ...draft, ...fields });
  const value = (event: Event) => (event.target as HTMLInputElement).value;
  const editing = draft.editing !== undefined;
  const ref = useFocusFirstField<HTMLFormElement>();
  return (
    <form ref={ref} class="card hub-form" onSubmit={onSubmit} aria-labelledby="hub-form-title">
      <h2 id="hub-form-title">{editing ? `Edit ${draft.name}` : 'Link a hub'}</h2>
      <label for="hub-name">Name</label>
      <input
        id="hub-name"
        value={draft.name}
        onInput={(event) => set({ name: value(event) })}
        required
        readOnly={editing}
        pattern={NAME_PATTERN}
        title={NAME_TITLE}
        autocomplete="off"
      />
      <fieldset disabled={editing}>
        <legend>Hub</legend>
        <label class="check">
          <input type="radio" name="hub-kind" checked={draft.kind === 'builtin'} onChange={() => set({ kind: 'builtin' })} />
          A built-in hub, served by OpenDPS
        </label>
        <label class="check">
          <input type="radio" name="hub-kind" checked={draft.kind === 'connectionString'} onChange={() => set({ kind: 'connectionString' })} />
          An Azure IoT Hub (or another hub) by its connection string
        </label>
      </fieldset>
      {draft.kind === 'connectionString' ? (
        <>
          <label for="hub-connection-string">Connection string</label>
          <textarea
            id="hub-connection-string"
            rows={3}
            spellcheck={false}
            autocomplete="off"
            required
            placeholder="HostName=…;SharedAccessKeyName=iothubowner;SharedAccessKey=…"
            value={draft.connectionString}
            onInput={(event) => set({ connectionString: value(event) })}
          />
          <p class="hint">The hub is asked to accept it before the link is made.</p>
        </>
      ) : null}
      <label for="hub-weight">Allocation weight</label>
      <input id="hub-weight" type="number" min={1} max={1000} step={1} required value={draft.allocationWeight} onInput={(event) => set({ allocationWeight: value(event) })} />
      <label class="check">
        <input type="checkbox" checked={draft.applyAllocationPolicy} onChange={(event) => set({ applyAllocationPolicy: (event.target as HTMLInputElement).checked })} />
        Apply the allocation policy (unchecked: only enrollments that name this hub use it)
      </label>
      <label for="hub-location">Location (optional, for lowest-latency allocation)</label>
      <input id="hub-location" value={draft.location} pattern="[A-Za-z0-9_\-]{1,64}" title="1-64 letters, digits, - or _" onInput={(event) => set({ location: value(event) })} />
      <div class="toolbar form-actions">
        <button type="submit" disabled={busy}>
          {busy ? (editing ? 'Saving…' : 'Linking…') : editing ? 'Save' : 'Link hub'}
        </button>
        <button type="button" class="secondary" onClick={() => setDraft(undefined)}>
          Cancel
        </button>
      </div>
    </form>
  );
}
