// The slice of the `vscode` API the extension touches, recorded for assertions.

type Listener<T> = (value: T) => unknown;

export class EventEmitter<T> {
  private listeners: Array<Listener<T>> = [];
  event = (listener: Listener<T>) => {
    this.listeners.push(listener);
    return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
  };
  fire(value: T): void {
    for (const l of [...this.listeners]) {
      l(value);
    }
  }
  dispose(): void {
    this.listeners = [];
  }
}

export class CancellationTokenSource {
  private emitter = new EventEmitter<void>();
  token = {
    isCancellationRequested: false,
    onCancellationRequested: this.emitter.event,
  };
  cancel(): void {
    if (!this.token.isCancellationRequested) {
      this.token.isCancellationRequested = true;
      this.emitter.fire();
    }
  }
  dispose(): void {
    this.emitter.dispose();
  }
}

export class ThemeColor {
  constructor(public readonly id: string) {}
}

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}

export enum ViewColumn {
  Active = -1,
  One = 1,
}

export interface StubStatusBarItem {
  id: string;
  name?: string;
  text: string;
  tooltip?: unknown;
  command?: string;
  backgroundColor?: ThemeColor;
  visible: boolean;
  show(): void;
  dispose(): void;
}

export interface StubWebviewPanel {
  webview: {
    html: string;
    cspSource: string;
    onDidReceiveMessage(listener: Listener<unknown>): { dispose(): void };
    /** Test helper: a message as if the page posted it. */
    post(message: unknown): void;
  };
  revealed: number;
  reveal(): void;
  onDidDispose(listener: Listener<void>): { dispose(): void };
  dispose(): void;
}

export const created = {
  statusBarItems: [] as StubStatusBarItem[],
  webviewPanels: [] as StubWebviewPanel[],
};

export function resetStub(): void {
  created.statusBarItems.length = 0;
  created.webviewPanels.length = 0;
}

export const window = {
  createStatusBarItem(id: string): StubStatusBarItem {
    const item: StubStatusBarItem = {
      id,
      text: '',
      visible: false,
      show() {
        item.visible = true;
      },
      dispose() {
        item.visible = false;
      },
    };
    created.statusBarItems.push(item);
    return item;
  },
  createWebviewPanel(): StubWebviewPanel {
    const messages = new EventEmitter<unknown>();
    const disposed = new EventEmitter<void>();
    const panel: StubWebviewPanel = {
      webview: {
        html: '',
        cspSource: 'stub-csp',
        onDidReceiveMessage: messages.event,
        post: (m) => messages.fire(m),
      },
      revealed: 0,
      reveal() {
        panel.revealed += 1;
      },
      onDidDispose: disposed.event,
      dispose() {
        disposed.fire();
      },
    };
    created.webviewPanels.push(panel);
    return panel;
  },
};
