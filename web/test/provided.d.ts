// Values the global setup provides to the tests (inject('ledgerUrl')...).
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    ledgerUrl: string;
    limitedUrl: string;
    ledgerBin: string;
    jwtUrl: string;
    jwtSecret: string;
  }
}
