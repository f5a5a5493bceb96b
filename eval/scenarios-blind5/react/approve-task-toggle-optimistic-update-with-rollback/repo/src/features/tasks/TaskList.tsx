import { useQuery } from "@tanstack/react-query";
import { fetchTasks } from "../../api/tasks";
import { tasksKey, useToggleTask } from "./useToggleTask";

export function TaskList({ projectId }: { projectId: string }) {
  const { data: tasks = [], isPending } = useQuery({
    queryKey: tasksKey(projectId),
    queryFn: () => fetchTasks(projectId),
  });
  const toggle = useToggleTask(projectId);

  if (isPending) return <p className="muted">Loading tasks…</p>;
  if (tasks.length === 0) return <p className="muted">No tasks yet.</p>;

  return (
    <ul className="task-list">
      {tasks.map((task) => (
        <li key={task.id} className={task.done ? "task task--done" : "task"}>
          <label>
            <input
              type="checkbox"
              checked={task.done}
              onChange={() => toggle.mutate({ id: task.id, done: !task.done })}
            />
            {task.title}
          </label>
          {task.assignee && <span className="task__assignee">{task.assignee.name}</span>}
        </li>
      ))}
    </ul>
  );
}
