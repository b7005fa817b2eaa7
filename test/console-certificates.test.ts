/**
 * The console's CA certificates page in headless Chromium (docs/console.md "CA certificates"): the
 * proof-of-possession flow with a CA made in the test, from upload to "Verified", with the
 * certificate parsed in the page as node:crypto reads it, and the errors shown in words; then an
 * X.509 individual enrollment and a group referencing the CA, made through the enrollment pages.
 */
import { X509Certificate } from 'node:crypto';
import { createLeaf, createRootCa, createVerificationCertificate } from '@opendps/pki';
import { screenshot, seriousViolations, useConsoleFixture } from './support/console';

const fixture = useConsoleFixture();

it('proves possession of a CA: upload, verification code, verification certificate, verified', async () => {
  const ca = createRootCa({ commonName: 'Console Test CA', organization: 'OpenDPS tests' });
  const x509 = new X509Certificate(ca.certificatePem);
  const { page, errors } = await fixture.openSignedIn();
  await page.getByRole('link', { name: 'Certificates' }).click();
  await page.getByText('No CA certificate yet.').waitFor();

  await page.getByLabel('Name', { exact: true }).fill('test-ca');
  await page.getByLabel('Or paste PEM').fill(ca.certificatePem);
  // Parsed in the page: the same subject, validity and thumbprint node:crypto reads.
  const details = page.locator('form .cert-details');
  await details.waitFor();
  const text = await details.textContent();
  // Written as the server writes subjectName (last RDN first, as .NET and DPS do).
  expect(text).toContain('O=OpenDPS tests, CN=Console Test CA');
  expect(text).toContain(x509.fingerprint.replace(/:/g, ''));
  expect(text).toContain(new Date(x509.validTo).toUTCString());
  expect(text).toContain(x509.serialNumber.toUpperCase().replace(/^0+/, ''));
  await page.getByRole('button', { name: 'Upload' }).click();
  const card = page.getByRole('article', { name: 'CA certificate test-ca' });
  await card.getByText('Unverified').waitFor();
  expect(await card.locator('.cert-details').textContent()).toContain('O=OpenDPS tests, CN=Console Test CA');
  expect(await seriousViolations(page)).toEqual([]);

  await card.getByRole('button', { name: 'Generate verification code' }).click();
  const code = (await card.locator('.code-value').textContent()) ?? '';
  expect(code).toMatch(/^[0-9A-F]{48}$/);

  // A certificate for the code signed by another CA is refused, in words with the DPS code.
  const stranger = createRootCa({ commonName: 'Someone else' });
  await card.getByLabel('Or paste PEM').fill(createLeaf(stranger, { commonName: code }).certificatePem);
  await card.getByRole('button', { name: 'Verify' }).click();
  expect(await card.getByRole('alert').textContent()).toContain('error 400005, HTTP 400');

  await card.getByLabel('Or paste PEM').fill(createVerificationCertificate(ca, code).certificatePem);
  await card.getByRole('button', { name: 'Verify' }).click();
  await card.getByText('Verified', { exact: true }).waitFor();
  expect(await card.getByRole('button', { name: 'Verify' }).count()).toBe(0);
  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, 'certificates-desktop');

  // Text that is no certificate is refused in the page before anything is sent.
  await page.getByLabel('Name', { exact: true }).fill('broken');
  await page.locator('form.card').last().getByLabel('Or paste PEM').fill('-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----');
  await page.getByText('The certificate is truncated.').waitFor();

  // An individual X.509 enrollment from a device certificate the CA issued: parsed in the page,
  // then shown from the `info` the server keeps.
  const device = createLeaf(ca, { commonName: 'x509-dev' });
  await page.getByRole('link', { name: 'Enrollments' }).click();
  await page.getByRole('link', { name: 'New enrollment' }).click();
  await page.getByLabel('Registration ID').fill('x509-dev');
  await page.getByLabel('Attestation').selectOption('x509');
  await page.getByRole('group', { name: 'Primary certificate' }).getByLabel('Or paste PEM').fill(device.certificatePem);
  const parsed = page.getByRole('group', { name: 'Primary certificate' }).locator('.cert-details');
  await parsed.getByText('CN=x509-dev').waitFor();
  expect(await parsed.textContent()).toContain('O=OpenDPS tests, CN=Console Test CA');
  await page.getByRole('button', { name: 'Create enrollment' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved enrollment x509-dev' }).waitFor();
  await page.getByText('Stored certificate:').first().waitFor();
  expect(await page.locator('.cert-details').first().textContent()).toContain(new X509Certificate(device.certificatePem).fingerprint.replace(/:/g, ''));
  expect(await seriousViolations(page)).toEqual([]);

  // A group that trusts devices through the verified CA.
  await page.getByRole('link', { name: 'Groups' }).click();
  await page.getByRole('link', { name: 'New group' }).click();
  await page.getByLabel('Group ID').fill('ca-grp');
  await page.getByLabel('Attestation').selectOption('x509');
  await page.getByLabel('Devices are trusted through').selectOption('caReferences');
  await page.getByLabel('Primary CA certificate').selectOption('test-ca');
  await page.getByRole('button', { name: 'Create group' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved group ca-grp' }).waitFor();

  // The CA cannot go while the group references it; said in words with the code.
  await page.getByRole('link', { name: 'Certificates' }).click();
  await card.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  expect(await page.getByRole('alert').textContent()).toContain('error 409002, HTTP 409');

  // Delete the group, then the CA, each confirmed in a dialog.
  await page.getByRole('link', { name: 'Groups' }).click();
  await page.getByRole('link', { name: 'ca-grp' }).click();
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await page.getByText('No groups yet.').waitFor();
  await page.getByRole('link', { name: 'Certificates' }).click();
  await card.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await page.getByText('No CA certificate yet.').waitFor();
  // Chromium logs the refused verify's 400 and the refused delete's 409; nothing else went wrong.
  expect(errors).toEqual(['Failed to load resource: the server responded with a status of 400 (Bad Request)', 'Failed to load resource: the server responded with a status of 409 (Conflict)']);
  await page.close();
}, 60_000);
