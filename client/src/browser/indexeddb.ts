import { FlotillaError } from '@flotilla/protocol';

// A few promise wrappers over IndexedDB: one database per device, object stores created on
// first open. Kept tiny on purpose (no idb dependency).

export interface IdbHandle {
  db: IDBDatabase;
  close(): void;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(idbError(req.error, 'IndexedDB request failed'));
  });
}

function idbError(error: DOMException | null, message: string): FlotillaError {
  return new FlotillaError('INTERNAL', `${message}: ${error?.message ?? 'unknown error'}`);
}

/** Opens (creating when missing) database `name` with the given object stores. */
export function openDatabase(
  name: string,
  stores: readonly string[],
  factory?: IDBFactory,
): Promise<IdbHandle> {
  const idb = factory ?? globalThis.indexedDB;
  if (typeof idb === 'undefined')
    return Promise.reject(new FlotillaError('INTERNAL', 'IndexedDB is not available in this environment'));
  return new Promise((resolve, reject) => {
    const open = idb.open(name, 1);
    open.onupgradeneeded = () => {
      for (const store of stores)
        if (!open.result.objectStoreNames.contains(store)) open.result.createObjectStore(store);
    };
    open.onsuccess = () => resolve({ db: open.result, close: () => open.result.close() });
    open.onerror = () => reject(idbError(open.error, `cannot open IndexedDB database ${name}`));
    open.onblocked = () => reject(new FlotillaError('INTERNAL', `IndexedDB database ${name} is blocked`));
  });
}

export function idbGet(handle: IdbHandle, store: string, key: string): Promise<unknown> {
  return request(handle.db.transaction(store, 'readonly').objectStore(store).get(key));
}

/** Writes `value` under `key`; resolves once the transaction committed (durable). */
export function idbPut(handle: IdbHandle, store: string, key: string, value: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const tx = handle.db.transaction(store, 'readwrite');
    tx.objectStore(store).put(value, key);
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(idbError(tx.error, 'IndexedDB write failed'));
    tx.onabort = () => reject(idbError(tx.error, 'IndexedDB write aborted'));
  });
}

export function idbDelete(handle: IdbHandle, store: string, key: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const tx = handle.db.transaction(store, 'readwrite');
    tx.objectStore(store).delete(key);
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(idbError(tx.error, 'IndexedDB delete failed'));
  });
}

export async function idbHas(handle: IdbHandle, store: string, key: string): Promise<boolean> {
  const count = await request(handle.db.transaction(store, 'readonly').objectStore(store).count(key));
  return count > 0;
}
