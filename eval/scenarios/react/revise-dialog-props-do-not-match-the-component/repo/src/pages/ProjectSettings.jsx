import { useState } from "react";
import { api } from "../api";
import { ConfirmDialog } from "../components/ConfirmDialog";

export function ProjectSettings({ project }) {
  const [name, setName] = useState(project.name);
  const [confirming, setConfirming] = useState(false);

  return (
    <section>
      <h1>Settings</h1>
      <label>
        Name <input value={name} onChange={(e) => setName(e.target.value)} />
      </label>
      <button onClick={() => api.renameProject(project.id, name)}>Save</button>
      <button className="danger" onClick={() => setConfirming(true)}>Delete project</button>
      <ConfirmDialog
        open={confirming}
        title="Delete this project?"
        message="Its boards and files are deleted too."
        onConfirm={() => api.deleteProject(project.id)}
        onCancel={() => setConfirming(false)}
      />
    </section>
  );
}
