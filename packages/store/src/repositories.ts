import {
  Errors,
  utcNow,
  type AttestationType,
  type CaCertificate,
  type DeviceRegistrationState,
  type EnrollmentGroup,
  type IndividualEnrollment,
  type X509CertificateInfo,
  type X509Certificates,
} from '@opendps/model';
import { newEtag } from './etag';
import type { Collection, DeleteOptions, PutOptions, RequiredDocument, StoredDocument, Store } from './store';

/**
 * Typed repositories over the store, shared by the service API and the registration service, so the
 * collection names and index conventions live in one place. Documents are stored without their etag;
 * every read copies the store's etag into the returned document.
 */

export interface WriteOptions {
  /** `*`: must exist; an etag: must be current (quotes optional). Else 412. */
  ifMatch?: string;
  /** `*`: must not exist, else 409. */
  ifNoneMatch?: '*';
}

export interface PageOptions {
  /** At most this many items (store default 100, capped at 1000). */
  pageSize?: number;
  continuation?: string;
}

export interface RepositoryPage<T> {
  items: T[];
  /** Present only while more items remain. */
  continuation?: string;
}

export interface Repository<T> {
  get(id: string): Promise<T | undefined>;
  /**
   * Writes the document under its own id. Sets `lastUpdatedDateTimeUtc` to now and keeps
   * `createdDateTimeUtc` (from the value, else from the stored document, else now). Returns the
   * document as stored, with its fresh etag.
   */
  put(value: T, options?: WriteOptions): Promise<T>;
  /**
   * `put` without reading first (a value without `createdDateTimeUtc` is a new document, created
   * now), answered at once with the document as it will be stored, etag included, so that writes
   * naming it can be issued in the same turn and share its commit (docs/scale.md "Store round
   * trips"). `written` settles when the write does.
   */
  putAlongside(value: T): { stored: T; written: Promise<unknown> };
  /** False when nothing was there; 412 on an etag mismatch. */
  delete(id: string, options?: DeleteOptions): Promise<boolean>;
  list(options?: PageOptions): Promise<RepositoryPage<T>>;
  count(): Promise<number>;
}

export interface EnrollmentRepository extends Repository<IndividualEnrollment> {
  /** Individual enrollments whose primary or secondary client certificate has this sha1 or sha256 thumbprint. */
  findByThumbprint(thumbprint: string): Promise<IndividualEnrollment[]>;
}

export interface EnrollmentGroupRepository extends Repository<EnrollmentGroup> {
  /** Groups with a signing certificate of this sha1 or sha256 thumbprint. */
  findByThumbprint(thumbprint: string): Promise<EnrollmentGroup[]>;
  /** Groups with a signing certificate of this subject (`CN=…, O=…`): finds a root the device did not send. */
  findBySigningSubject(subjectName: string): Promise<EnrollmentGroup[]>;
  /** Groups whose caReferences name this CA certificate. */
  findByCaReference(caName: string): Promise<EnrollmentGroup[]>;
  /** Groups of one attestation type (Azure allows at most 100 symmetric-key groups per instance; OpenDPS sets no limit). */
  findByAttestationType(type: AttestationType): Promise<EnrollmentGroup[]>;
  /** Replaced by every write of a group (store.ts `Collection.version`): whether a node's copy of the groups is current. */
  version(): Promise<string | undefined>;
}

export interface RegistrationRepository extends Repository<DeviceRegistrationState> {
  /** Registration states of the devices provisioned through one enrollment group, paged. */
  listByEnrollmentGroup(enrollmentGroupId: string, options?: PageOptions): Promise<RepositoryPage<DeviceRegistrationState>>;
}

export interface CaCertificateRepository extends Repository<CaCertificate> {
  /** CA certificates of this sha1 or sha256 thumbprint. */
  findByThumbprint(thumbprint: string): Promise<CaCertificate[]>;
  /** CA certificates of this subject (`CN=…, O=…`): finds a root the device did not send. */
  findBySubject(subjectName: string): Promise<CaCertificate[]>;
}

/** Collection and index names, for code that must reach the store directly. */
export const COLLECTIONS = {
  enrollments: 'enrollments',
  enrollmentGroups: 'enrollmentGroups',
  registrations: 'registrations',
  caCertificates: 'caCertificates',
} as const;

export const INDEXES = {
  thumbprint: 'thumbprint',
  subject: 'subject',
  caReference: 'caReference',
  attestationType: 'attestationType',
  enrollmentGroupId: 'enrollmentGroupId',
} as const;

type Timestamped = { etag?: string; createdDateTimeUtc?: string; lastUpdatedDateTimeUtc?: string };

/** DPS's documented limit of CA certificates per provisioning service (docs/service-rest.md §15). */
export const MAX_CA_CERTIFICATES = 25;

interface Definition<T> {
  idOf(value: T): string;
  indexes(value: T): Record<string, string[]>;
  /** Documents of the same scope the value names, which must exist when it is written. */
  requires?(value: T): RequiredDocument[];
  limit?: PutOptions['limit'];
}

function withEtag<T extends Timestamped>(document: StoredDocument<T>): T {
  return { ...document.value, etag: document.etag };
}

function repository<T extends Timestamped>(collection: Collection<T>, definition: Definition<T>): Repository<T> {
  return {
    async get(id) {
      const document = await collection.get(id);
      return document ? withEtag(document) : undefined;
    },
    async put(value, options = {}) {
      const id = definition.idOf(value);
      const now = utcNow();
      const createdDateTimeUtc = value.createdDateTimeUtc ?? (await collection.get(id))?.value.createdDateTimeUtc ?? now;
      const { etag: _ignored, ...rest } = value;
      const stored = { ...rest, createdDateTimeUtc, lastUpdatedDateTimeUtc: now } as T;
      const document = await collection.put(id, stored, {
        ...(options.ifMatch !== undefined ? { ifMatch: options.ifMatch } : {}),
        ...(options.ifNoneMatch !== undefined ? { ifNoneMatch: options.ifNoneMatch } : {}),
        indexes: definition.indexes(stored),
        ...(definition.requires ? { requires: definition.requires(stored) } : {}),
        ...(definition.limit ? { limit: definition.limit } : {}),
      });
      return withEtag(document);
    },
    putAlongside(value) {
      const now = utcNow();
      const { etag: _ignored, ...rest } = value;
      const stored = { ...rest, createdDateTimeUtc: value.createdDateTimeUtc ?? now, lastUpdatedDateTimeUtc: now } as T;
      const etag = newEtag();
      const written = collection.put(definition.idOf(stored), stored, {
        etag,
        indexes: definition.indexes(stored),
        ...(definition.requires ? { requires: definition.requires(stored) } : {}),
        ...(definition.limit ? { limit: definition.limit } : {}),
      });
      return { stored: { ...stored, etag }, written };
    },
    delete: (id, options) => collection.delete(id, options),
    async list(options = {}) {
      const page = await collection.list(options);
      return { items: page.items.map(withEtag), ...(page.continuation ? { continuation: page.continuation } : {}) };
    },
    count: () => collection.count(),
  };
}

/**
 * One repository per (store, ID scope, kind), built on first use: a registration asks for its
 * repositories several times, and each is a dozen closures over a collection.
 */
const built = new WeakMap<Store, Map<string, unknown>>();

function memoized<R>(store: Store, idScope: string, kind: string, build: () => R): R {
  let repositories = built.get(store);
  if (!repositories) {
    repositories = new Map();
    built.set(store, repositories);
  }
  const key = `${kind}\u0000${idScope}`;
  let repository = repositories.get(key) as R | undefined;
  if (repository === undefined) {
    // Scopes are ID scopes, a handful per store; the cap is only a backstop.
    if (repositories.size >= 1024) repositories.clear();
    repository = build();
    repositories.set(key, repository);
  }
  return repository;
}

async function find<T extends Timestamped>(collection: Collection<T>, index: string, key: string): Promise<T[]> {
  return (await collection.findByIndex(index, key)).map(withEtag);
}

/** Upper-case sha1 and sha256 thumbprints of the certificates in both slots. */
export function certificateThumbprints(certificates: X509Certificates | undefined): string[] {
  const infos = [certificates?.primary?.info, certificates?.secondary?.info].filter(
    (info): info is X509CertificateInfo => info !== undefined,
  );
  return unique(infos.flatMap((info) => [info.sha1Thumbprint, info.sha256Thumbprint].map((t) => t.toUpperCase())));
}

/** The group a registration state came through (x509 or symmetric-key group), if any. */
export function registrationEnrollmentGroupId(state: DeviceRegistrationState): string | undefined {
  return state.x509?.enrollmentGroupId ?? state.symmetricKey?.enrollmentGroupId;
}

/** The CA certificate names a group's caReferences hold. */
function caReferenceNames(group: EnrollmentGroup): string[] {
  const references = group.attestation.x509?.caReferences;
  return unique([references?.primary, references?.secondary]);
}

function unique(values: Array<string | undefined>): string[] {
  return [...new Set(values.filter((value): value is string => typeof value === 'string' && value !== ''))];
}

export function enrollments(store: Store, idScope: string): EnrollmentRepository {
  return memoized(store, idScope, COLLECTIONS.enrollments, () => buildEnrollments(store, idScope));
}

function buildEnrollments(store: Store, idScope: string): EnrollmentRepository {
  const collection = store.collection<IndividualEnrollment>(idScope, COLLECTIONS.enrollments);
  return {
    ...repository(collection, {
      idOf: (enrollment) => enrollment.registrationId,
      indexes: (enrollment) => ({
        [INDEXES.thumbprint]: certificateThumbprints(enrollment.attestation.x509?.clientCertificates),
      }),
    }),
    findByThumbprint: (thumbprint) => find(collection, INDEXES.thumbprint, thumbprint.toUpperCase()),
  };
}

export function enrollmentGroups(store: Store, idScope: string): EnrollmentGroupRepository {
  return memoized(store, idScope, COLLECTIONS.enrollmentGroups, () => buildEnrollmentGroups(store, idScope));
}

function buildEnrollmentGroups(store: Store, idScope: string): EnrollmentGroupRepository {
  const collection = store.collection<EnrollmentGroup>(idScope, COLLECTIONS.enrollmentGroups);
  return {
    ...repository(collection, {
      idOf: (group) => group.enrollmentGroupId,
      indexes: (group) => {
        const x509 = group.attestation.x509;
        return {
          [INDEXES.thumbprint]: certificateThumbprints(x509?.signingCertificates),
          [INDEXES.subject]: unique([x509?.signingCertificates?.primary?.info?.subjectName, x509?.signingCertificates?.secondary?.info?.subjectName]),
          [INDEXES.caReference]: caReferenceNames(group),
          [INDEXES.attestationType]: [group.attestation.type],
        };
      },
      // A group never names a CA certificate that is gone, even when the CA is deleted meanwhile.
      requires: (group) =>
        caReferenceNames(group).map((name) => ({
          collection: COLLECTIONS.caCertificates,
          id: name,
          error: () => Errors.invalidAttestation(`caReferences names '${name}', which is not a CA certificate of this instance.`),
        })),
    }),
    findByThumbprint: (thumbprint) => find(collection, INDEXES.thumbprint, thumbprint.toUpperCase()),
    findBySigningSubject: (subjectName) => find(collection, INDEXES.subject, subjectName),
    findByCaReference: (caName) => find(collection, INDEXES.caReference, caName),
    findByAttestationType: (type) => find(collection, INDEXES.attestationType, type),
    version: () => collection.version(),
  };
}

export function registrations(store: Store, idScope: string): RegistrationRepository {
  return memoized(store, idScope, COLLECTIONS.registrations, () => buildRegistrations(store, idScope));
}

function buildRegistrations(store: Store, idScope: string): RegistrationRepository {
  const collection = store.collection<DeviceRegistrationState>(idScope, COLLECTIONS.registrations);
  return {
    ...repository(collection, {
      idOf: (state) => state.registrationId,
      indexes: (state) => ({ [INDEXES.enrollmentGroupId]: unique([registrationEnrollmentGroupId(state)]) }),
    }),
    async listByEnrollmentGroup(enrollmentGroupId, options = {}) {
      const page = await collection.list({ ...options, where: { index: INDEXES.enrollmentGroupId, key: enrollmentGroupId } });
      return { items: page.items.map(withEtag), ...(page.continuation ? { continuation: page.continuation } : {}) };
    },
  };
}

/**
 * CA certificate names, like every store id, are case-insensitive: `Root-CA` and `root-ca` are one
 * certificate in the admin API, in `caReferences` and at registration.
 */
export function caCertificates(store: Store, idScope: string): CaCertificateRepository {
  return memoized(store, idScope, COLLECTIONS.caCertificates, () => buildCaCertificates(store, idScope));
}

function buildCaCertificates(store: Store, idScope: string): CaCertificateRepository {
  const collection = store.collection<CaCertificate>(idScope, COLLECTIONS.caCertificates);
  const base = repository(collection, {
    idOf: (ca) => ca.name,
    indexes: (ca) => ({
      [INDEXES.thumbprint]: unique([ca.info.sha1Thumbprint, ca.info.sha256Thumbprint].map((t) => t.toUpperCase())),
      [INDEXES.subject]: [ca.info.subjectName],
    }),
    limit: {
      count: MAX_CA_CERTIFICATES,
      error: () => Errors.caCertificateLimit(`An instance holds at most ${MAX_CA_CERTIFICATES} CA certificates; delete one first.`),
    },
  });
  return {
    ...base,
    // Refused in the same atomic step as the delete while a group names the CA, so a concurrent
    // group write cannot slip in between a check and the delete.
    delete: (name, options = {}) =>
      collection.delete(name, {
        ...options,
        unlessIndexed: {
          collection: COLLECTIONS.enrollmentGroups,
          index: INDEXES.caReference,
          key: name,
          error: () => Errors.caCertificateInUse(`The CA certificate '${name}' is referenced by enrollment groups; change or delete them first.`),
        },
      }),
    findByThumbprint: (thumbprint) => find(collection, INDEXES.thumbprint, thumbprint.toUpperCase()),
    findBySubject: (subjectName) => find(collection, INDEXES.subject, subjectName),
  };
}
