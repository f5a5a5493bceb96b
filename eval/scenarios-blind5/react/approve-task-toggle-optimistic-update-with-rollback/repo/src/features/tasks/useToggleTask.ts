import { useMutation, useQueryClient } from "@tanstack/react-query";
import { updateTask } from "../../api/tasks";
import type { Task } from "../../api/types";
import { useToast } from "../../ui/toast";

export const tasksKey = (projectId: string) => ["projects", projectId, "tasks"] as const;
const toggleKey = (projectId: string) => ["projects", projectId, "toggle-task"] as const;

type ToggleVars = { id: string; done: boolean };

export function useToggleTask(projectId: string) {
  const queryClient = useQueryClient();
  const toast = useToast();

  return useMutation({
    mutationKey: toggleKey(projectId),
    mutationFn: ({ id, done }: ToggleVars) => updateTask(id, { done }),
    onMutate: async ({ id, done }) => {
      await queryClient.cancelQueries({ queryKey: tasksKey(projectId) });
      const previous = queryClient.getQueryData<Task[]>(tasksKey(projectId));
      queryClient.setQueryData<Task[]>(tasksKey(projectId), (old) =>
        old?.map((task) => (task.id === id ? { ...task, done } : task)),
      );
      return { previous };
    },
    onError: (_error, _vars, context) => {
      if (context?.previous) {
        queryClient.setQueryData(tasksKey(projectId), context.previous);
      }
      toast.error("Couldn't update the task. Please try again.");
    },
    onSettled: () => {
      // Refetch once the last toggle in a burst settles, so an early response
      // doesn't overwrite the checkboxes that are still in flight.
      if (queryClient.isMutating({ mutationKey: toggleKey(projectId) }) === 1) {
        return queryClient.invalidateQueries({ queryKey: tasksKey(projectId) });
      }
    },
  });
}
