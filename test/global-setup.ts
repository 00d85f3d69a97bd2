/** Jest global setup: nothing shared yet; integration suites start what they need. */
export default async function globalSetup(): Promise<void> {}
