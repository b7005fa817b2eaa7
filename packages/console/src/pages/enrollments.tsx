import { useRoute } from '../router';
import { EnrollmentForm } from './enrollment-form';
import { INDIVIDUAL } from './enrollment-kind';
import { EnrollmentList } from './enrollment-list';

/** Individual enrollments: `#/enrollments` (list), `#/enrollments/new`, `#/enrollments/{id}` (docs/console.md). */
export function EnrollmentsPage() {
  const route = useRoute();
  const rest = route.path.slice(INDIVIDUAL.route.length + 1);
  if (!rest) return <EnrollmentList kind={INDIVIDUAL} />;
  return rest === 'new' ? <EnrollmentForm kind={INDIVIDUAL} /> : <EnrollmentForm kind={INDIVIDUAL} id={decodeURIComponent(rest)} />;
}
