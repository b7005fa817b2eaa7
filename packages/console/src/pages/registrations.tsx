import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { ConfirmDialog } from '../components/confirm-dialog';
import { DataTable, searchPages, type Column } from '../components/data-table';
import { ErrorBanner } from '../components/error-banner';
import { TextField } from '../components/fields';
import { useAction } from '../components/use-action';
import { href, navigate, useRoute } from '../router';
import { useSession } from '../session';
import type { RegistrationState } from './enrollment-kind';
import { queryPage } from './enrollment-list';
import { TraceView, type RegistrationTrace } from './trace-view';

/**
 * Registration records: `#/registrations` (find by registration id, or list a group's),
 * `#/registrations?group=G`, and `#/registrations/{id}` (the record and its decision trace).
 */
export function RegistrationsPage() {
  const route = useRoute();
  const id = route.path.slice('/registrations/'.length);
  if (id) return <RegistrationDetail id={decodeURIComponent(id)} />;
  return <RegistrationsHome group={route.params.get('group') ?? ''} />;
}

function RegistrationsHome({ group }: { group: string }) {
  const api = useSession();
  const [registrationId, setRegistrationId] = useState('');
  const [groupId, setGroupId] = useState(group);
  useEffect(() => setGroupId(group), [group]);
  const load = useCallback(
    (options: { continuation?: string; pageSize: number; search: string }) =>
      searchPages<RegistrationState>(
        (continuation, pageSize) => queryPage(api, `/registrations/${encodeURIComponent(group)}/query`, continuation, pageSize),
        options,
        (state) => state.registrationId,
      ),
    [api, group],
  );
  const columns: Column<RegistrationState>[] = [
    { title: 'Registration ID', cell: (state) => <a href={href(`/registrations/${encodeURIComponent(state.registrationId)}`)}>{state.registrationId}</a> },
    { title: 'Status', cell: (state) => <span class={`status-${state.status}`}>{state.status}</span> },
    { title: 'Hub', cell: (state) => state.assignedHub ?? '' },
    { title: 'Device ID', cell: (state) => state.deviceId ?? '' },
    { title: 'Updated', cell: (state) => (state.lastUpdatedDateTimeUtc ? new Date(state.lastUpdatedDateTimeUtc).toLocaleString() : '') },
  ];
  return (
    <section class="registrations">
      <h1>Registrations</h1>
      <div class="two-forms">
        <form
          class="card"
          onSubmit={(event) => {
            event.preventDefault();
            if (registrationId.trim()) navigate(`/registrations/${encodeURIComponent(registrationId.trim())}`);
          }}
        >
          <TextField label="Registration ID" value={registrationId} onInput={setRegistrationId} required hint="The record of one device (an individual enrollment's, or a device of a group), with its decision trace." />
          <button type="submit">Show registration</button>
        </form>
        <form
          class="card"
          onSubmit={(event) => {
            event.preventDefault();
            navigate('/registrations', { group: groupId.trim() });
          }}
        >
          <TextField label="Enrollment group ID" value={groupId} onInput={setGroupId} required hint="Every device registered through this group." />
          <button type="submit">List the group's registrations</button>
        </form>
      </div>
      {group ? (
        <>
          <h2>Registrations of group {group}</h2>
          <DataTable caption={`Registrations of group ${group}`} columns={columns} rowKey={(state) => state.registrationId} load={load} searchLabel="Search by registration id" empty="No device has registered through this group yet." />
        </>
      ) : null}
    </section>
  );
}

function RegistrationDetail({ id }: { id: string }) {
  const api = useSession();
  const [record, setRecord] = useState<RegistrationState | null>();
  const [trace, setTrace] = useState<RegistrationTrace | null>();
  const { error, setError, run } = useAction();
  const [confirming, setConfirming] = useState(false);
  const [deleted, setDeleted] = useState(false);
  const instance = encodeURIComponent(api.session.instance.name);
  const tracePath = `/admin/instances/${instance}/registrations/${encodeURIComponent(id)}/trace`;
  /** A 404 means "none kept": shown as such, not as an error. */
  const orNull = <T,>(promise: Promise<{ body: T }>) =>
    promise.then(
      ({ body }) => body,
      (caught: unknown) => {
        if (caught instanceof ApiError && caught.status === 404) return null;
        throw caught;
      },
    );

  useEffect(() => {
    setError(undefined);
    setRecord(undefined);
    setTrace(undefined);
    // A record read for an earlier id may answer after this one: only the current id's answer counts.
    let current = true;
    Promise.all([orNull(api.service<RegistrationState>('GET', `/registrations/${encodeURIComponent(id)}`)), orNull(api.admin<RegistrationTrace>('GET', tracePath))]).then(
      ([nextRecord, nextTrace]) => {
        if (!current) return;
        setRecord(nextRecord);
        setTrace(nextTrace);
      },
      (caught: unknown) => current && setError(caught),
    );
    return () => {
      current = false;
    };
  }, [id]);

  const remove = () => {
    setConfirming(false);
    return run(async () => {
      await api.service('DELETE', `/registrations/${encodeURIComponent(id)}`, { headers: record?.etag ? { 'if-match': record.etag } : {} });
      // The trace goes with the record (as `opendps registration delete` does); none kept is fine.
      await orNull(api.admin('DELETE', tracePath));
      setRecord(null);
      setTrace(null);
      setDeleted(true);
    });
  };

  return (
    <section class="registration">
      <p>
        <a href={href('/registrations')}>← Registrations</a>
      </p>
      <h1>Registration {id}</h1>
      <ErrorBanner error={error} />
      {deleted ? (
        <p class="banner ok" role="status">
          The registration record of {id} was deleted. The device gets a new one when it registers again.
        </p>
      ) : null}
      {record === undefined && !error ? <p class="loading">Loading…</p> : null}
      {record === null && !deleted ? <p>No registration record: this device has not been assigned, or its record was deleted.</p> : null}
      {record ? (
        <div class="card">
          <h2>Record</h2>
          <dl class="record">
            <dt>Status</dt>
            <dd class={`status-${record.status}`}>{record.status}</dd>
            {record.assignedHub ? (
              <>
                <dt>Assigned hub</dt>
                <dd>{record.assignedHub}</dd>
              </>
            ) : null}
            {record.deviceId ? (
              <>
                <dt>Device ID</dt>
                <dd>{record.deviceId}</dd>
              </>
            ) : null}
            {record.substatus ? (
              <>
                <dt>Substatus</dt>
                <dd>{record.substatus}</dd>
              </>
            ) : null}
            {record.errorCode !== undefined ? (
              <>
                <dt>Error</dt>
                <dd>
                  {record.errorMessage} (error {record.errorCode})
                </dd>
              </>
            ) : null}
            {record.lastUpdatedDateTimeUtc ? (
              <>
                <dt>Updated</dt>
                <dd>{new Date(record.lastUpdatedDateTimeUtc).toLocaleString()}</dd>
              </>
            ) : null}
          </dl>
          <button type="button" class="danger" onClick={() => setConfirming(true)}>
            Delete registration record
          </button>
        </div>
      ) : null}
      {trace !== undefined ? (
        <div class="card">
          <h2>Decision trace</h2>
          {trace ? <TraceView trace={trace} /> : <p>No trace is kept for this registration id (traces of refusals are kept for an hour, others for 7 days).</p>}
        </div>
      ) : null}
      <ConfirmDialog open={confirming} title={`Delete the registration record of ${id}?`} confirmLabel="Delete" danger onConfirm={() => void remove()} onCancel={() => setConfirming(false)}>
        <p>The enrollment stays; the device is assigned afresh when it registers again.</p>
      </ConfirmDialog>
    </section>
  );
}
