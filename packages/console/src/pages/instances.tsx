/** Instances: built in the next step (docs/console.md). */
export function InstancesPage() {
  return (
    <section>
      <h1>Instances</h1>
      <p>Coming with the next change.</p>
    </section>
  );
}
