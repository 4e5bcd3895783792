/**
 * The page's behaviour: who is signed in, the two ways to start a job, the live job list and the
 * selected job's result. State lives here; views/ only draws it.
 */
import { ApiProblem, type ApiClient } from "./api-client";
import type { Job, JobEvent } from "./api-types";
import { NotSignedIn, type Auth } from "./auth/auth";
import { KnownJobs } from "./jobs";
import { connectLiveUpdates, type ConnectionState, type LiveUpdates } from "./live-updates";
import { UploadFailed, uploadFile } from "./upload";
import { byId } from "./views/dom";
import { describeInput, statusLabels } from "./views/format";
import { renderJobList } from "./views/job-list";
import { renderResult } from "./views/result-view";
import { renderSession } from "./views/session-view";

const PAGE_SIZE = "20";

const connectionLabels: Record<ConnectionState | "idle", string> = {
  idle: "Live updates: off",
  connecting: "Live updates: connecting…",
  connected: "Live updates: on",
  reconnecting: "Live updates: reconnecting…",
  stopped: "Live updates: offline",
};

/** What to tell the user about a failure, in plain words; `pointers` name the field's request members. */
export function messageFor(error: unknown, pointers: readonly string[] = []): string {
  if (error instanceof ApiProblem) {
    const reasons = error.reasonsFor(pointers);
    if (reasons.length === 0) return error.problem.detail;
    const text = reasons.join("; ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }
  if (error instanceof NotSignedIn || error instanceof UploadFailed) return error.message;
  return `Something went wrong: ${error instanceof Error ? error.message : String(error)}`;
}

export class App {
  private readonly jobs = new KnownJobs();
  private selectedId: string | undefined;
  private live: LiveUpdates | undefined;
  /** Bumped on every sign-in change, so answers for the previous user are dropped. */
  private generation = 0;

  private readonly elements = {
    session: byId("session", HTMLElement),
    fileForm: byId("file-form", HTMLFormElement),
    fileInput: byId("file-input", HTMLInputElement),
    fileError: byId("file-error", HTMLElement),
    progressRow: byId("upload-progress-row", HTMLElement),
    progress: byId("upload-progress", HTMLProgressElement),
    textForm: byId("text-form", HTMLFormElement),
    textInput: byId("text-input", HTMLTextAreaElement),
    textError: byId("text-error", HTMLElement),
    connection: byId("connection", HTMLElement),
    reconnect: byId("reconnect", HTMLButtonElement),
    jobsMessage: byId("jobs-message", HTMLElement),
    jobsError: byId("jobs-error", HTMLElement),
    jobList: byId("job-list", HTMLOListElement),
    loadMore: byId("load-more", HTMLButtonElement),
    result: byId("result", HTMLElement),
    resultHeading: byId("result-heading", HTMLElement),
    resultBody: byId("result-body", HTMLElement),
    announcer: byId("announcer", HTMLElement),
  };

  constructor(
    private readonly api: ApiClient,
    private readonly auth: Auth,
  ) {
    const e = this.elements;
    e.fileForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submitFile();
    });
    e.textForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submitText();
    });
    // A changed input is another submission (its own idempotency key), and the old error no longer applies.
    e.textInput.addEventListener("input", () => {
      this.textKey = undefined;
      this.clearFieldError(e.textInput, e.textError);
    });
    e.fileInput.addEventListener("change", () => {
      this.fileKey = undefined;
      this.clearFieldError(e.fileInput, e.fileError);
    });
    e.reconnect.addEventListener("click", () => this.live?.restart());
    e.loadMore.addEventListener("click", () => void this.loadOlder());
  }

  /** Draws the sign-in area and, when someone is signed in, starts their session. */
  start(): void {
    this.renderSession();
    this.startSession();
  }

  private renderSession(): void {
    renderSession(this.elements.session, this.auth, {
      signIn: async (name) => {
        await this.auth.signIn(name);
        this.renderSession();
        this.startSession();
        this.announce(`Signed in as ${this.auth.currentUser() ?? ""}.`);
      },
      signOut: async () => {
        await this.auth.signOut();
        this.renderSession();
        this.startSession();
      },
    });
  }

  /** Forgets the previous user's jobs and connection, and loads the current user's. */
  private startSession(): void {
    this.generation++;
    this.live?.stop();
    this.live = undefined;
    this.jobs.clear();
    this.selectedId = undefined;
    const signedIn = this.auth.currentUser() !== undefined;
    for (const form of [this.elements.fileForm, this.elements.textForm]) form.querySelector("fieldset")!.disabled = !signedIn;
    this.setConnection("idle");
    this.render();
    if (!signedIn) {
      this.showJobsMessage(this.auth.mode === "none" ? "Sign-in is not configured." : "Sign in to see your jobs.");
      return;
    }
    void this.refresh();
    const generation = this.generation;
    this.live = connectLiveUpdates(this.api, {
      onState: (state) => generation === this.generation && this.setConnection(state),
      // Pushes may have been missed while the socket was down (or before it first opened): re-read.
      onConnected: () => generation === this.generation && void this.refresh(),
      onJobEvent: (event) => generation === this.generation && this.applyEvent(event),
    });
  }

  /** Re-reads the newest page, and each unfinished job beyond it. */
  private async refresh(): Promise<void> {
    const generation = this.generation;
    try {
      const page = await this.api.listJobs({ pageSize: PAGE_SIZE });
      if (generation !== this.generation) return;
      const before = new Map(this.jobs.all().map((job) => [job.id, job.status]));
      const unfinished = this.jobs.refreshFirstPage(page);
      this.announceChanges(before);
      this.elements.jobsError.hidden = true;
      this.render();
      await Promise.all(unfinished.map((job) => this.reread(job.id)));
    } catch (error) {
      if (generation === this.generation) this.showJobsError(`Your jobs could not be loaded: ${messageFor(error)}`);
    }
  }

  private async reread(id: string): Promise<void> {
    const generation = this.generation;
    try {
      const job = await this.api.getJob(id);
      if (generation !== this.generation) return;
      this.update(job);
    } catch (error) {
      if (generation === this.generation) this.showJobsError(`A job could not be read: ${messageFor(error)}`);
    }
  }

  /** A pushed job event: applied to the job the page knows, or the job read when it does not. */
  private applyEvent(event: JobEvent): void {
    const before = new Map([[event.jobId, this.jobs.get(event.jobId)?.status]]);
    if (!this.jobs.applyEvent(event)) {
      void this.reread(event.jobId);
      return;
    }
    this.announceChanges(before);
    this.render();
  }

  private async loadOlder(): Promise<void> {
    const token = this.jobs.continuationToken;
    if (!token) return;
    const generation = this.generation;
    this.elements.loadMore.disabled = true;
    try {
      const page = await this.api.listJobs({ pageSize: PAGE_SIZE, continuationToken: token });
      if (generation !== this.generation) return;
      this.jobs.appendPage(page);
      this.render();
    } catch (error) {
      this.showJobsError(`Older jobs could not be loaded: ${messageFor(error)}`);
    } finally {
      this.elements.loadMore.disabled = false;
    }
  }

  private update(job: Job): void {
    const before = new Map([[job.id, this.jobs.get(job.id)?.status]]);
    this.jobs.put(job);
    this.announceChanges(before);
    this.render();
  }

  /** Says, through the live region, which known jobs changed state. */
  private announceChanges(before: ReadonlyMap<string, Job["status"] | undefined>): void {
    for (const [id, status] of before) {
      const job = this.jobs.get(id);
      if (job && status !== undefined && status !== job.status) this.announce(`${describeInput(job)}: ${statusLabels[job.status]}.`);
    }
  }

  private textKey: string | undefined;
  private fileKey: string | undefined;

  private async submitText(): Promise<void> {
    const { textInput, textError, textForm } = this.elements;
    this.clearFieldError(textInput, textError);
    const done = this.busy(textForm);
    let failure: string | undefined;
    try {
      // The same key until the text changes: a retry after a lost answer cannot make a second job.
      this.textKey ??= crypto.randomUUID();
      const job = await this.api.createJob({ kind: "text", text: textInput.value }, this.textKey);
      this.textKey = undefined;
      textInput.value = "";
      this.created(job);
    } catch (error) {
      failure = messageFor(error, ["#/text"]);
    } finally {
      done();
    }
    // After the form is enabled again: a disabled field cannot take the focus.
    if (failure) this.showFieldError(textInput, textError, failure);
  }

  private async submitFile(): Promise<void> {
    const { fileInput, fileError, fileForm, progress, progressRow } = this.elements;
    this.clearFieldError(fileInput, fileError);
    const file = fileInput.files?.[0];
    if (!file) return this.showFieldError(fileInput, fileError, "Choose a file.");
    if (file.size === 0) return this.showFieldError(fileInput, fileError, "The file is empty.");
    const done = this.busy(fileForm);
    progress.value = 0;
    progressRow.hidden = false;
    let failure: string | undefined;
    try {
      const upload = await this.api.createUpload({ size: file.size });
      await uploadFile(file, upload, (fraction) => (progress.value = Math.round(fraction * 100)));
      this.fileKey ??= crypto.randomUUID();
      const job = await this.api.createJob({ kind: "blob", blobName: upload.blobName }, this.fileKey);
      this.fileKey = undefined;
      fileForm.reset();
      this.created(job);
    } catch (error) {
      failure = messageFor(error, ["#/blobName"]);
    } finally {
      progressRow.hidden = true;
      done();
    }
    if (failure) this.showFieldError(fileInput, fileError, failure);
  }

  /** A job the page just submitted: listed, selected, announced; focus moves to its result. */
  private created(job: Job): void {
    this.jobs.put(job);
    this.selectedId = job.id;
    this.render();
    this.announce(`${describeInput(job)}: queued.`);
    this.elements.resultHeading.focus();
  }

  private select(id: string): void {
    this.selectedId = id;
    this.render();
    this.elements.resultHeading.focus();
  }

  private render(): void {
    const { jobList, loadMore, result, resultBody, jobsMessage } = this.elements;
    const jobs = this.jobs.all();
    renderJobList(jobList, jobs, this.selectedId, (id) => this.select(id));
    loadMore.hidden = this.jobs.continuationToken === undefined;
    if (this.auth.currentUser() !== undefined) {
      jobsMessage.hidden = !(this.jobs.loaded && jobs.length === 0);
      jobsMessage.textContent = "No jobs yet. Upload a file or paste a text to start one.";
    }
    renderResult(result, resultBody, this.selectedId === undefined ? undefined : this.jobs.get(this.selectedId));
  }

  private setConnection(state: ConnectionState | "idle"): void {
    const { connection, reconnect } = this.elements;
    connection.dataset.state = state;
    connection.textContent = connectionLabels[state];
    reconnect.hidden = state !== "stopped";
  }

  private showJobsMessage(text: string): void {
    this.elements.jobsMessage.textContent = text;
    this.elements.jobsMessage.hidden = false;
  }

  private showJobsError(text: string): void {
    this.elements.jobsError.textContent = text;
    this.elements.jobsError.hidden = false;
  }

  private showFieldError(field: HTMLElement, slot: HTMLElement, text: string): void {
    slot.textContent = text;
    slot.hidden = false;
    field.setAttribute("aria-invalid", "true");
    field.focus();
    this.announce(text);
  }

  private clearFieldError(field: HTMLElement, slot: HTMLElement): void {
    slot.hidden = true;
    slot.textContent = "";
    field.removeAttribute("aria-invalid");
  }

  /** Disables the form while its request runs; returns the function that re-enables it. */
  private busy(form: HTMLFormElement): () => void {
    const fieldset = form.querySelector("fieldset")!;
    fieldset.disabled = true;
    form.setAttribute("aria-busy", "true");
    return () => {
      fieldset.disabled = false;
      form.removeAttribute("aria-busy");
    };
  }

  private announce(text: string): void {
    // Cleared first, so the same words twice are announced twice.
    this.elements.announcer.textContent = "";
    requestAnimationFrame(() => (this.elements.announcer.textContent = text));
  }
}
