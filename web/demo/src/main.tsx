import { createLedgerClient, metaInvalidation } from '@interactionledger/client';
import { LedgerProvider } from '@interactionledger/client/react';
import { MutationCache, QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { reportError, reportToggleError } from './errors';
import { readIdentity } from './identity';
import './styles.css';

const identity = readIdentity();
const ledger = createLedgerClient({ token: () => identity.token });
const queryClient: QueryClient = new QueryClient({
  defaultOptions: { queries: { retry: false, refetchOnWindowFocus: true } },
  mutationCache: new MutationCache({
    onSettled: metaInvalidation(() => queryClient),
    onSuccess: () => reportError(null),
    onError: (err, vars, _context, mutation) => reportToggleError(mutation.options.mutationKey, vars, err),
  }),
});

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <LedgerProvider client={ledger}>
        <App identity={identity} />
      </LedgerProvider>
    </QueryClientProvider>
  </StrictMode>,
);
