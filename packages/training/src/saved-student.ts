// Saved-student save/load lives in @distill/student-architectures (serve loads students without training);
// re-exported here for one round so existing imports keep working.
export { loadStudent, saveStudent, SavedStudentTeacher, type SavedStudentMeta } from '@distill/student-architectures';
