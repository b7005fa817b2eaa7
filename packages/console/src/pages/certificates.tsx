/** CA certificates: built in the next step (docs/console.md). */
export function CertificatesPage() {
  return (
    <section>
      <h1>CA certificates</h1>
      <p>Coming with the next change.</p>
    </section>
  );
}
