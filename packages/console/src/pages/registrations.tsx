/** Registrations: built in the next step (docs/console.md). */
export function RegistrationsPage() {
  return (
    <section>
      <h1>Registrations</h1>
      <p>Coming with the next change.</p>
    </section>
  );
}
