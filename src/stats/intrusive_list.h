// A doubly linked list threaded through its elements: O(1) insert, remove and
// move without allocation. An element may sit on several lists, one Hook each.
#pragma once

namespace mailscope::stats {

template <typename T>
struct Hook {
  T* prev = nullptr;
  T* next = nullptr;
};

// Thread-compatible. Does not own its elements.
template <typename T, Hook<T> T::*H>
class IntrusiveList {
 public:
  T* head() const { return head_; }
  T* tail() const { return tail_; }
  bool empty() const { return head_ == nullptr; }
  static T* Next(const T* x) { return (x->*H).next; }

  void PushBack(T* x) {
    (x->*H).prev = tail_;
    (x->*H).next = nullptr;
    if (tail_ != nullptr)
      (tail_->*H).next = x;
    else
      head_ = x;
    tail_ = x;
  }
  void PushFront(T* x) {
    (x->*H).prev = nullptr;
    (x->*H).next = head_;
    if (head_ != nullptr)
      (head_->*H).prev = x;
    else
      tail_ = x;
    head_ = x;
  }
  void Remove(T* x) {
    Hook<T>& h = x->*H;
    if (h.prev != nullptr)
      (h.prev->*H).next = h.next;
    else
      head_ = h.next;
    if (h.next != nullptr)
      (h.next->*H).prev = h.prev;
    else
      tail_ = h.prev;
    h.prev = h.next = nullptr;
  }
  void MoveToBack(T* x) {
    if (tail_ == x) return;
    Remove(x);
    PushBack(x);
  }

 private:
  T* head_ = nullptr;
  T* tail_ = nullptr;
};

}  // namespace mailscope::stats
