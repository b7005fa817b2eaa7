import { useRoute } from '../router';
import { EnrollmentForm } from './enrollment-form';
import { GROUP } from './enrollment-kind';
import { EnrollmentList } from './enrollment-list';

/** Enrollment groups: `#/groups` (list), `#/groups/new`, `#/groups/{id}` (docs/console.md). */
export function GroupsPage() {
  const route = useRoute();
  const rest = route.path.slice(GROUP.route.length + 1);
  if (!rest) return <EnrollmentList kind={GROUP} />;
  return rest === 'new' ? <EnrollmentForm kind={GROUP} /> : <EnrollmentForm kind={GROUP} id={decodeURIComponent(rest)} />;
}

