import { useState } from 'preact/hooks';
import { ConfirmRemoval, NAME_PATTERN, NAME_TITLE } from '../components/admin-list';
import { ErrorBanner } from '../components/error-banner';
import { ListTable } from '../components/list-table';
import { useAction } from '../components/use-action';
import { CopyButton } from '../components/copy-button';
import { useFocusFirstField } from '../ops/focus';
import { useSession, type InstanceView } from '../session';

const POLICIES = [
  ['hashed', 'Evenly weighted distribution (hashed)'],
  ['geoLatency', 'Lowest latency'],
  ['static', 'Static configuration'],
] as const;

const QUOTAS = [
  ['registrationsPerSecond', 'Registrations per second'],
  ['pollsPerSecond', 'Operation polls per second'],
  ['devicePollsPer10Seconds', 'Polls per device per 10 seconds'],
] as const;

const COLUMNS = ['Name', 'ID scope', 'Allocation policy', 'Linked hubs', 'Quotas'];

type QuotaName = (typeof QUOTAS)[number][0];

interface Draft {
  name: string;
  idScope: string;
  allocationPolicy: string;
  quotas: Partial<Record<QuotaName, string>>;
}

const EMPTY: Draft = { name: '', idScope: '', allocationPolicy: 'hashed', quotas: {} };

/**
 * Provisioning instances (admin key only; admin API `/admin/instances`): list, add (showing the new
 * instance's service connection string once, to copy), remove. The server refuses to remove the
 * last one (409), which is shown as it said it.
 */
export function InstancesPage() {
  const api = useSession();
  const { instances } = api.session;
  const [draft, setDraft] = useState<Draft>();
  const [created, setCreated] = useState<InstanceView>();
  const [removing, setRemoving] = useState<InstanceView>();
  const [notice, setNotice] = useState('');
  const { busy, error, setError, run, submit } = useAction();
  const formRef = useFocusFirstField<HTMLFormElement>(draft !== undefined);

  const add = submit(async () => {
    if (!draft) return;
    const quotas: Record<string, number> = {};
    for (const [key] of QUOTAS) if (draft.quotas[key]?.trim()) quotas[key] = Number(draft.quotas[key]);
    const { body } = await api.admin<InstanceView>('POST', '/admin/instances', {
      body: {
        name: draft.name.trim(),
        allocationPolicy: draft.allocationPolicy,
        ...(draft.idScope.trim() ? { idScope: draft.idScope.trim() } : {}),
        ...(Object.keys(quotas).length ? { quotas } : {}),
      },
    });
    setCreated(body);
    setDraft(undefined);
    setNotice(`Added ${body.name}.`);
    await api.refresh();
  });

  const remove = (instance: InstanceView) =>
    run(async () => {
      await api.admin('DELETE', `/admin/instances/${encodeURIComponent(instance.name)}`);
      setNotice(`Removed ${instance.name}.`);
      if (created?.name === instance.name) setCreated(undefined);
      await api.refresh();
    });

  const set = (fields: Partial<Draft>) => draft && setDraft({ ...draft, ...fields });
  const value = (event: Event) => (event.target as HTMLInputElement).value;

  return (
    <section class="instances">
      <h1>Instances</h1>
      <p class="hint">Each provisioning instance has its own ID scope, enrollments, linked hubs and service key; all share the listeners.</p>
      <div class="toolbar">
        <button type="button" onClick={() => setDraft({ ...EMPTY })} disabled={draft !== undefined}>
          Add an instance
        </button>
        <span role="status" class="hint">
          {notice}
        </span>
      </div>
      <ErrorBanner error={error} onDismiss={() => setError(undefined)} />
      {created?.serviceConnectionString ? (
        <div class="card created" aria-labelledby="created-title">
          <h2 id="created-title">{created.name} is ready</h2>
          <p>
            Its service connection string (policy <code>provisioningserviceowner</code>), for the service SDK and for signing in here:
          </p>
          <label for="created-connection-string">Service connection string of {created.name}</label>
          <textarea id="created-connection-string" class="code" rows={3} readOnly value={created.serviceConnectionString} />
          <CopyButton value={created.serviceConnectionString} label={`Copy the service connection string of ${created.name}`} />
        </div>
      ) : null}
      {draft ? (
        <form ref={formRef} class="card" onSubmit={add} aria-labelledby="instance-form-title">
          <h2 id="instance-form-title">Add an instance</h2>
          <label for="instance-name">Name</label>
          <input
            id="instance-name"
            required
            autocomplete="off"
            value={draft.name}
            onInput={(event) => set({ name: value(event) })}
            pattern={NAME_PATTERN}
            title={NAME_TITLE}
          />
          <label for="instance-policy">Allocation policy</label>
          <select id="instance-policy" value={draft.allocationPolicy} onChange={(event) => set({ allocationPolicy: value(event) })}>
            {POLICIES.map(([policy, text]) => (
              <option key={policy} value={policy}>
                {text}
              </option>
            ))}
          </select>
          <label for="instance-scope">ID scope (optional; generated when empty)</label>
          <input
            id="instance-scope"
            autocomplete="off"
            value={draft.idScope}
            onInput={(event) => set({ idScope: value(event) })}
            pattern="0ne[0-9A-F]{8}"
            title="0ne followed by 8 uppercase hexadecimal digits"
            placeholder="0ne…"
          />
          <fieldset>
            <legend>Quotas (optional; empty keeps the default)</legend>
            {QUOTAS.map(([key, text]) => (
              <div key={key}>
                <label for={`quota-${key}`}>{text}</label>
                <input
                  id={`quota-${key}`}
                  type="number"
                  min={1}
                  step={1}
                  value={draft.quotas[key] ?? ''}
                  onInput={(event) => set({ quotas: { ...draft.quotas, [key]: value(event) } })}
                />
              </div>
            ))}
          </fieldset>
          <div class="toolbar form-actions">
            <button type="submit" disabled={busy}>
              {busy ? 'Adding…' : 'Add instance'}
            </button>
            <button type="button" class="secondary" onClick={() => setDraft(undefined)}>
              Cancel
            </button>
          </div>
        </form>
      ) : null}
      <ListTable caption="Provisioning instances" columns={COLUMNS}>
        {instances.map((instance) => (
          <tr key={instance.name} data-instance={instance.name}>
            <th scope="row">{instance.name}</th>
            <td>
              <code>{instance.idScope}</code>
            </td>
            <td>{instance.allocationPolicy}</td>
            <td>{instance.linkedHubs.map((hub) => hub.name).join(', ') || '—'}</td>
            <td class="quotas">
              {Object.entries(instance.quotas ?? {})
                .map(([key, quota]) => `${key} ${quota}`)
                .join(', ') || '—'}
            </td>
            <td class="actions">
              <button type="button" class="link danger-text" onClick={() => setRemoving(instance)} aria-label={`Remove ${instance.name}`}>
                Remove
              </button>
            </td>
          </tr>
        ))}
      </ListTable>
      <ConfirmRemoval item={removing} verb="Remove" onConfirm={(instance) => void remove(instance)} onClose={() => setRemoving(undefined)}>
        <p>
          Its enrollments stop working at once: devices of ID scope <code>{removing?.idScope}</code> are refused.
        </p>
      </ConfirmRemoval>
    </section>
  );
}
