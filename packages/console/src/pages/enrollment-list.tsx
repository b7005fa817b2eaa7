import { useCallback, useState } from 'preact/hooks';
import { DataTable, searchPages, type Column, type Page } from '../components/data-table';
import { href } from '../router';
import { useSession, type SessionApi } from '../session';
import { BulkImport } from './bulk-import';
import { idOf, type EnrollmentKind, type EnrollmentRecord } from './enrollment-kind';

/** One page of `POST {collection}/query` (docs/service-rest.md §5). */
export async function queryPage<T>(api: SessionApi, path: string, continuation: string | undefined, pageSize: number): Promise<Page<T>> {
  const response = await api.service<T[]>('POST', path, {
    body: { query: '*' },
    headers: { 'x-ms-max-item-count': String(pageSize), ...(continuation !== undefined ? { 'x-ms-continuation': continuation } : {}) },
  });
  const next = response.headers.get('x-ms-continuation');
  return { items: response.body ?? [], ...(next ? { continuation: next } : {}) };
}

const ATTESTATION_NAMES: Record<string, string> = { symmetricKey: 'Symmetric key', x509: 'X.509', tpm: 'TPM' };

/** Individual enrollments or groups: the searchable list, with "New" and the bulk import. */
export function EnrollmentList({ kind }: { kind: EnrollmentKind }) {
  const api = useSession();
  const [reloadKey, setReloadKey] = useState(0);
  const load = useCallback(
    (options: { continuation?: string; pageSize: number; search: string }) =>
      searchPages<EnrollmentRecord>((continuation, pageSize) => queryPage(api, `${kind.apiPath}/query`, continuation, pageSize), options, (record) => idOf(kind, record)),
    [api, kind],
  );
  const columns: Column<EnrollmentRecord>[] = [
    {
      title: kind.idLabel,
      cell: (record) => <a href={href(`${kind.route}/${encodeURIComponent(idOf(kind, record))}`)}>{idOf(kind, record)}</a>,
    },
    { title: 'Attestation', cell: (record) => ATTESTATION_NAMES[record.attestation?.type] ?? record.attestation?.type },
    {
      title: 'Status',
      cell: (record) => <span class={record.provisioningStatus === 'disabled' ? 'bad' : 'ok'}>{record.provisioningStatus === 'disabled' ? 'Disabled' : 'Enabled'}</span>,
    },
    { title: 'Allocation', cell: (record) => record.allocationPolicy ?? 'instance default' },
    kind.kind === 'individual'
      ? {
          title: 'Registration',
          cell: (record) =>
            record.registrationState ? (
              <a class={`status-${record.registrationState.status}`} href={href(`/registrations/${encodeURIComponent(idOf(kind, record))}`)}>
                {record.registrationState.status}
                {record.registrationState.assignedHub ? ` to ${record.registrationState.assignedHub}` : ''}
              </a>
            ) : (
              // Query answers carry no registrationState (a GET of the enrollment does): link to the record.
              <a href={href(`/registrations/${encodeURIComponent(idOf(kind, record))}`)}>
                Record and trace<span class="visually-hidden"> of {idOf(kind, record)}</span>
              </a>
            ),
        }
      : { title: 'Registrations', cell: (record) => <a href={href('/registrations', { group: idOf(kind, record) })}>Show</a> },
    { title: 'Updated', cell: (record) => (record.lastUpdatedDateTimeUtc ? new Date(record.lastUpdatedDateTimeUtc).toLocaleString() : '') },
  ];
  return (
    <section class="enrollments">
      <div class="page-head">
        <h1>{kind.kind === 'individual' ? 'Individual enrollments' : 'Enrollment groups'}</h1>
        <a class="button" href={href(`${kind.route}/new`)}>
          New {kind.noun}
        </a>
      </div>
      <DataTable
        caption={kind.kind === 'individual' ? 'Individual enrollments' : 'Enrollment groups'}
        columns={columns}
        rowKey={(record) => idOf(kind, record)}
        load={load}
        searchLabel={`Search by ${kind.idLabel.toLowerCase()}`}
        empty={`No ${kind.noun}s yet.`}
        reloadKey={reloadKey}
      />
      <BulkImport kind={kind} onDone={() => setReloadKey((n) => n + 1)} />
    </section>
  );
}
