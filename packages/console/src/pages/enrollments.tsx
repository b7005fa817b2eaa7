/** Individual enrollments: built in the next step (docs/console.md). */
export function EnrollmentsPage() {
  return (
    <section>
      <h1>Individual enrollments</h1>
      <p>Coming with the next change.</p>
    </section>
  );
}
