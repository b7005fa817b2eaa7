/** Enrollment groups: built in the next step (docs/console.md). */
export function GroupsPage() {
  return (
    <section>
      <h1>Enrollment groups</h1>
      <p>Coming with the next change.</p>
    </section>
  );
}
